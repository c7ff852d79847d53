#include "centermask/common/stage_timer.h"

#include <chrono>

namespace centermask {

namespace {
thread_local StageRecording* active_recording = nullptr;
}

StageRecording::StageRecording(std::function<void()> synchronize, std::function<double()> clock_ms)
    : synchronize_(std::move(synchronize)),
      clock_ms_(std::move(clock_ms)),
      previous_(active_recording) {
  active_recording = this;
}

double StageRecording::now_ms() const {
  if (clock_ms_) return clock_ms_();
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
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
  recording_->open_.push_back({recording_->now_ms(), 0.0});
}

ScopedStage::~ScopedStage() {
  if (recording_ == nullptr) return;
  if (recording_->synchronize_) recording_->synchronize_();
  const StageRecording::Open open = recording_->open_.back();
  recording_->open_.pop_back();
  const double elapsed = recording_->now_ms() - open.start_ms;
  recording_->add(name_, elapsed - open.nested_ms);
  if (!recording_->open_.empty()) recording_->open_.back().nested_ms += elapsed;
}

}  // namespace centermask
