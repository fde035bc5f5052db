#ifndef IMBRIDGE_COMMON_EXECUTOR_H_
#define IMBRIDGE_COMMON_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace imbridge {

// A few worker threads that run posted tasks in FIFO order; for blocking
// work (file I/O) that must stay off gRPC's reaction threads. Threads are
// started when tasks need them: a Post() that finds no idle thread starts
// one, up to `threads`, so an executor that is never posted to costs no
// thread (and no stack, no malloc arena).
// Thread-safe. The destructor runs the tasks already posted, then joins.
class Executor {
 public:
  explicit Executor(int threads);
  ~Executor();

  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void Post(std::function<void()> task);

 private:
  void Run();

  const size_t max_threads_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Threads waiting for a task.
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  // Grows only while !stopping_, so the destructor reads it unlocked after
  // setting stopping_.
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_EXECUTOR_H_
