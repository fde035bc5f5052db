#include "common/executor.h"

#include <algorithm>

namespace imbridge {

Executor::Executor(int threads)
    : max_threads_(static_cast<size_t>(std::max(threads, 1))) {}

Executor::~Executor() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    // No thread starts from here on; the running ones drain the tasks.
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void Executor::Post(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
  // A task posted while stopping (by a task) runs on a thread still
  // draining: the poster itself is one.
  if (!stopping_ && tasks_.size() > idle_ && threads_.size() < max_threads_) {
    threads_.emplace_back([this] { Run(); });
  }
}

void Executor::Run() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      ++idle_;
      mu_.Await(absl::Condition(
          +[](Executor* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu_) {
            return !e->tasks_.empty() || e->stopping_;
          },
          this));
      --idle_;
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace imbridge
