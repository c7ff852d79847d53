#include "centermask/common/stage_timer.h"

namespace centermask {

namespace {
thread_local StageRecording* active_recording = nullptr;
}

StageRecording::StageRecording(std::function<void()> synchronize)
    : synchronize_(std::move(synchronize)), previous_(active_recording) {
  active_recording = this;
}

StageRecording::~StageRecording() { active_recording = previous_; }

void StageRecording::add(const std::string& name, double ms) {
  for (auto& [stage, total] : totals_)
    if (stage == name) {
      total += ms;
      return;
    }
  totals_.emplace_back(name, ms);
}

ScopedStage::ScopedStage(const char* name) : name_(name), recording_(active_recording) {
  if (recording_ == nullptr) return;
  recording_->add(name_, 0.0);  // listed in the order stages are entered
  if (recording_->synchronize_) recording_->synchronize_();
  recording_->open_.push_back({std::chrono::steady_clock::now(), 0.0});
}

ScopedStage::~ScopedStage() {
  if (recording_ == nullptr) return;
  if (recording_->synchronize_) recording_->synchronize_();
  const StageRecording::Open open = recording_->open_.back();
  recording_->open_.pop_back();
  const double elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - open.start)
          .count();
  recording_->add(name_, elapsed - open.nested_ms);
  if (!recording_->open_.empty()) recording_->open_.back().nested_ms += elapsed;
}

}  // namespace centermask
