// TSan annotations for Debian's absl::Mutex, absl::CondVar and
// absl::Notification (scripts/sanitize.sh tsan preloads this library).
//
// Debian's libabsl_synchronization is not built with -fsanitize=thread, so
// TSan cannot see that absl::Mutex orders the accesses it guards and would
// report every ABSL_GUARDED_BY field as a race. This library, LD_PRELOADed,
// takes the place of the lock, unlock and wait functions: each calls the real
// one (dlsym RTLD_NEXT) and tells TSan about the happens-before edge it makes
// (__tsan_release before an unlock, __tsan_acquire after a lock). gRPC's
// internal locks are absl::Mutex too, so its hand-offs become visible as
// well. It is not itself instrumented, and the TSan entry points are weak: in
// a process without TSan (python3, sh) the wrappers only forward.
//
// Reader locks are treated like writer locks (an over-approximation: two
// readers are ordered, which could hide a write made under a reader lock).
//
// absl evaluates a Condition inside the mutex's slow paths, in whichever
// thread holds it at the time: the waiter itself (LockWhen, Await) or the
// thread that is unlocking (Unlock, CondVar::Wait's unlock, Await's unlock,
// which run the waiters' conditions to pick the one to wake). Those reads of
// guarded state happen after the wrapper's __tsan_release of an unlock and
// before the __tsan_acquire of a lock, so TSan would see them unordered with
// the next holder's writes. Condition::Eval is called through the PLT from
// every one of those paths (objdump of Debian's libabsl_synchronization), so
// it is wrapped too: each wrapper records the mutex its thread is inside
// (tls_mutex), and an Eval in that thread is bracketed by an acquire and a
// release of that mutex, the same edges absl's own TSan build annotates
// (EvalConditionAnnotated in absl/synchronization/mutex.cc).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" {
void __tsan_acquire(void* addr) __attribute__((weak));
void __tsan_release(void* addr) __attribute__((weak));
}

namespace {

void Acquire(const void* addr) {
  if (__tsan_acquire != nullptr) __tsan_acquire(const_cast<void*>(addr));
}
void Release(const void* addr) {
  if (__tsan_release != nullptr) __tsan_release(const_cast<void*>(addr));
}

// The real function `mangled` (in libabsl_synchronization), cast to F.
template <typename F>
F Real(const char* mangled) {
  void* f = dlsym(RTLD_NEXT, mangled);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found\n", mangled);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

// The absl::Mutex whose lock, unlock or wait this thread is inside (the
// object Condition::Eval's reads are ordered by), or null.
__attribute__((tls_model("initial-exec"))) thread_local const void* tls_mutex =
    nullptr;

// Sets tls_mutex for the scope of one wrapped call (nested calls restore it).
class InsideMutex {
 public:
  explicit InsideMutex(const void* mu) : previous_(tls_mutex) {
    tls_mutex = mu;
  }
  ~InsideMutex() { tls_mutex = previous_; }
  InsideMutex(const InsideMutex&) = delete;
  InsideMutex& operator=(const InsideMutex&) = delete;

 private:
  const void* previous_;
};

}  // namespace

// The mangled names are of absl's inline namespace "debian3" (Debian's
// abseil 20220623); the static_assert below fails on another one.
static_assert(sizeof(absl::Mutex) == sizeof(void*), "absl::Mutex layout");
#define IMBRIDGE_REAL(type, name) static const auto real = Real<type>(name)

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  IMBRIDGE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  InsideMutex inside(this);
  real(this);
  Acquire(this);
}
void Mutex::ReaderLock() {
  IMBRIDGE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  InsideMutex inside(this);
  real(this);
  Acquire(this);
}
bool Mutex::TryLock() {
  IMBRIDGE_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  InsideMutex inside(this);
  bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}
bool Mutex::ReaderTryLock() {
  IMBRIDGE_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  InsideMutex inside(this);
  bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}
void Mutex::Unlock() {
  IMBRIDGE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  InsideMutex inside(this);
  Release(this);
  real(this);
}
void Mutex::ReaderUnlock() {
  IMBRIDGE_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  InsideMutex inside(this);
  Release(this);
  real(this);
}
void Mutex::LockWhen(const Condition& cond) {
  IMBRIDGE_REAL(void (*)(Mutex*, const Condition&),
                "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  InsideMutex inside(this);
  real(this, cond);
  Acquire(this);
}
void Mutex::ReaderLockWhen(const Condition& cond) {
  IMBRIDGE_REAL(void (*)(Mutex*, const Condition&),
                "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  InsideMutex inside(this);
  real(this, cond);
  Acquire(this);
}
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  IMBRIDGE_REAL(
      bool (*)(Mutex*, const Condition&, Duration),
      "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
      "8DurationE");
  InsideMutex inside(this);
  bool met = real(this, cond, timeout);
  Acquire(this);
  return met;
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  IMBRIDGE_REAL(
      bool (*)(Mutex*, const Condition&, Time),
      "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
      "4TimeE");
  InsideMutex inside(this);
  bool met = real(this, cond, deadline);
  Acquire(this);
  return met;
}
bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  IMBRIDGE_REAL(bool (*)(Mutex*, const Condition&, Duration),
                "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_"
                "9ConditionENS0_8DurationE");
  InsideMutex inside(this);
  bool met = real(this, cond, timeout);
  Acquire(this);
  return met;
}
bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  IMBRIDGE_REAL(bool (*)(Mutex*, const Condition&, Time),
                "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_"
                "9ConditionENS0_4TimeE");
  InsideMutex inside(this);
  bool met = real(this, cond, deadline);
  Acquire(this);
  return met;
}
void Mutex::Await(const Condition& cond) {
  IMBRIDGE_REAL(void (*)(Mutex*, const Condition&),
                "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  InsideMutex inside(this);
  Release(this);
  real(this, cond);
  Acquire(this);
}
bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  IMBRIDGE_REAL(bool (*)(Mutex*, const Condition&, Duration),
                "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
                "8DurationE");
  InsideMutex inside(this);
  Release(this);
  bool met = real(this, cond, timeout);
  Acquire(this);
  return met;
}
bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  IMBRIDGE_REAL(
      bool (*)(Mutex*, const Condition&, Time),
      "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  InsideMutex inside(this);
  Release(this);
  bool met = real(this, cond, deadline);
  Acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  IMBRIDGE_REAL(void (*)(CondVar*, Mutex*),
                "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  InsideMutex inside(mu);
  Release(mu);
  real(this, mu);
  Acquire(mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  IMBRIDGE_REAL(bool (*)(CondVar*, Mutex*, Duration),
                "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_"
                "8DurationE");
  InsideMutex inside(mu);
  Release(mu);
  bool timed_out = real(this, mu, timeout);
  Acquire(mu);
  return timed_out;
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  IMBRIDGE_REAL(bool (*)(CondVar*, Mutex*, Time),
                "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_"
                "4TimeE");
  InsideMutex inside(mu);
  Release(mu);
  bool timed_out = real(this, mu, deadline);
  Acquire(mu);
  return timed_out;
}

void Notification::Notify() {
  IMBRIDGE_REAL(void (*)(Notification*),
                "_ZN4absl7debian312Notification6NotifyEv");
  Release(this);
  real(this);
}
void Notification::WaitForNotification() const {
  IMBRIDGE_REAL(void (*)(const Notification*),
                "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  Acquire(this);
}
bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  IMBRIDGE_REAL(
      bool (*)(const Notification*, Duration),
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeout"
      "ENS0_8DurationE");
  bool notified = real(this, timeout);
  if (notified) Acquire(this);
  return notified;
}
bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  IMBRIDGE_REAL(
      bool (*)(const Notification*, Time),
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadline"
      "ENS0_4TimeE");
  bool notified = real(this, deadline);
  if (notified) Acquire(this);
  return notified;
}

bool Condition::Eval() const {
  IMBRIDGE_REAL(bool (*)(const Condition*),
                "_ZNK4absl7debian39Condition4EvalEv");
  const void* mu = tls_mutex;
  if (mu == nullptr) return real(this);
  Acquire(mu);
  bool met = real(this);
  Release(mu);
  return met;
}

ABSL_NAMESPACE_END
}  // namespace absl
