#ifndef IMBRIDGE_COMMON_TSAN_HAND_OFF_H_
#define IMBRIDGE_COMMON_TSAN_HAND_OFF_H_

// Tells ThreadSanitizer about an ordering it cannot see; nothing in other
// builds.
//
// gRPC's callback API hands a reactor's message buffer from the thread that
// calls StartRead to the gRPC thread that runs the next OnReadDone, through
// its completion queue inside Debian's uninstrumented libgrpc. TSan then
// sees the reactor's own accesses to the buffer before StartRead (say its
// Clear()) and after OnReadDone (its reads) as unordered, and reports a race
// that cannot happen. TsanHandOffRelease(buffer) before StartRead and
// TsanHandOffAcquire(buffer) at the start of OnReadDone state the order
// gRPC guarantees, so that real races on the reactor's other state are
// still found.
//
// The same holds for a reactor's end: gRPC runs OnDone after every other
// reaction has returned and after Finish, possibly on another thread, and
// OnDone deletes the reactor. A TsanReaction declared first in each reaction,
// a TsanHandOffRelease(reactor) just before a Finish called from outside a
// reaction, and TsanHandOffAcquire(reactor) first in OnDone state that
// order, so that the delete is not reported against the reactions' last
// accesses.

#if defined(__SANITIZE_THREAD__)
#define IMBRIDGE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IMBRIDGE_TSAN 1
#endif
#endif

#ifdef IMBRIDGE_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace imbridge {

inline void TsanHandOffRelease(const void* object) {
#ifdef IMBRIDGE_TSAN
  __tsan_release(const_cast<void*>(object));
#else
  (void)object;
#endif
}

inline void TsanHandOffAcquire(const void* object) {
#ifdef IMBRIDGE_TSAN
  __tsan_acquire(const_cast<void*>(object));
#else
  (void)object;
#endif
}

// Releases `reactor` when the reaction it is declared in returns (see
// above): declared as the first statement of OnReadDone, OnWriteDone and
// OnCancel.
class TsanReaction {
 public:
  explicit TsanReaction(const void* reactor) : reactor_(reactor) {}
  TsanReaction(const TsanReaction&) = delete;
  TsanReaction& operator=(const TsanReaction&) = delete;
  ~TsanReaction() { TsanHandOffRelease(reactor_); }

 private:
  const void* const reactor_;
};

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_TSAN_HAND_OFF_H_
