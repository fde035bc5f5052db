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

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_TSAN_HAND_OFF_H_
