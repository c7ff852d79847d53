// A trained model's detections in one picture: class, score, box and mask area.
#include <centermask/predictor.h>

#include <cstdio>
#include <exception>
#include <opencv2/imgcodecs.hpp>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL.pt IMAGE\n", argv[0]);
    return 2;
  }
  try {
    centermask::Predictor predictor(argv[1]);  // a checkpoint: model_final.pt
    const std::vector<std::string> names = predictor.class_names();
    const cv::Mat image = cv::imread(argv[2]);
    if (image.empty()) throw std::runtime_error(std::string(argv[2]) + ": not a readable image");
    for (const centermask::Instance& object : predictor.predict(image))
      std::printf("%s %.3f box %.1f %.1f %.1f %.1f mask %lld px\n",
                  names[object.class_index].c_str(), object.score, object.box.x0, object.box.y0,
                  object.box.x1, object.box.y1, static_cast<long long>(object.mask.area()));
  } catch (const std::exception& e) {  // a missing file, an unreadable image: named
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
