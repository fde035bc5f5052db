// The executor: FIFO tasks on at most N threads, started only when tasks
// need them, every posted task run before the destructor returns.

#include "common/executor.h"

#include <dirent.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace imbridge {
namespace {

// The threads of this process (Linux).
int ThreadCount() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n;
}

TEST(ExecutorTest, AnExecutorNeverPostedToStartsNoThread) {
  int before = ThreadCount();
  ASSERT_GT(before, 0);
  {
    Executor executor(4);
    EXPECT_EQ(ThreadCount(), before);
  }
  EXPECT_EQ(ThreadCount(), before);
}

TEST(ExecutorTest, BlockingTasksUseAtMostTheThreadsGiven) {
  absl::Mutex mu;
  bool open = false;
  int running = 0;
  int peak = 0;
  std::set<std::thread::id> threads;
  std::atomic<int> done{0};
  {
    Executor executor(3);
    for (int i = 0; i < 8; ++i) {
      executor.Post([&] {
        absl::MutexLock lock(&mu);
        threads.insert(std::this_thread::get_id());
        peak = std::max(peak, ++running);
        mu.Await(absl::Condition(&open));
        --running;
        ++done;
      });
    }
    absl::MutexLock lock(&mu);
    auto three = [&] { return running == 3; };
    EXPECT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(30)));
    open = true;
  }
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(peak, 3);
  EXPECT_EQ(threads.size(), 3u);
}

TEST(ExecutorTest, TasksRunInOrderOnOneThread) {
  std::vector<int> order;
  {
    Executor executor(1);
    for (int i = 0; i < 100; ++i)
      executor.Post([&order, i] { order.push_back(i); });
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(ExecutorTest, ATaskPostedByATaskWhileStoppingStillRuns) {
  std::atomic<bool> inner{false};
  {
    Executor executor(1);
    executor.Post([&] {
      absl::SleepFor(absl::Milliseconds(20));
      executor.Post([&] { inner = true; });
    });
  }
  EXPECT_TRUE(inner.load());
}

}  // namespace
}  // namespace imbridge
