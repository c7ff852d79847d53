// The built-in methods, one row each. A method lives in its folder (methods/<name>/), whose
// <name>_registration() says everything the engine needs to know of it; adding a built-in
// method is adding its folder and its row here. A program or a test registers its own with
// register_method() instead (method_registry.h).

#include "modeling/methods/registry.h"

namespace centermask {

MethodRegistration centermask_registration();       // methods/centermask/
MethodRegistration polarmask_registration();        // methods/polarmask/
MethodRegistration centermask_fcos_registration();  // methods/centermask_fcos/

std::vector<MethodRegistration> builtin_methods() {
  return {centermask_registration(), polarmask_registration(), centermask_fcos_registration()};
}

}  // namespace centermask
