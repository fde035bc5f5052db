#ifndef IMBRIDGE_ADAPTERS_COMMON_INBOUND_PIPELINE_H_
#define IMBRIDGE_ADAPTERS_COMMON_INBOUND_PIPELINE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/executor.h"
#include "imbridge/v1/events.pb.h"
#include "imbridge/v1/router.pb.h"

namespace imbridge::adapters {

// A file an inbound event refers to, which the pipeline copies into the
// router's blob store before the event is published.
struct InboundFile {
  // The attachment it fills: conversion.events[event_index], its
  // posted().attachments(attachment_index). That attachment's name,
  // mime_type and size (when known, else 0) are set by the connector.
  size_t event_index = 0;
  int attachment_index = 0;
  // Streams the file's bytes, in order, to `write`; blocks (runs on one of
  // the pipeline's download slots). Returns OK when all bytes were written;
  // a retryable error (RetryableError) when the messenger may give the file
  // later, which makes the whole input retried; kOutOfRange when the file is
  // bigger than the `max_bytes` it was given (the attachment then names the
  // bridge's limit); any other error when the file cannot be had for good:
  // the event is published without it, the error's message as the
  // attachment's unavailable_reason, so say it for people ("Slack did not
  // provide the file: ..."). An error `write` returned must be passed on.
  std::function<absl::Status(
      uint64_t max_bytes,
      const std::function<absl::Status(absl::string_view chunk)>& write)>
      download;
  // Optional: told the attachment once the file is in the blob store (its
  // blob_id and size set), e.g. to remember it for a retried input.
  std::function<void(const v1::Attachment& stored)> stored;
};

// What a connector made of one raw input.
struct InboundConversion {
  // The bridge events, published in this order (together, on the ordered
  // stream to the router, which commits them in that order and does not
  // commit one after an earlier one of its chat it failed to store). Empty
  // when the input is ignored (an echo of the bridge's own post, an unknown
  // event type): it is then acknowledged at once as handled.
  std::vector<v1::Event> events;
  // The files behind the events' attachments, fetched before publishing.
  std::vector<InboundFile> files;
};

// How the pipeline finished with one input.
struct InboundResult {
  enum class Outcome {
    // The router has the events (accepted, duplicate or dropped as an
    // echo), or the input needed no event. Acknowledge the transport.
    kOk,
    // Try again later (a file could not be fetched for now, the router was
    // not reachable, the adapter is stopping): HTTP 503, or do not advance
    // a polling offset.
    kRetry,
    // The input itself is bad (the connector refused it or threw, or it
    // made an event the router rejected or that cannot be sent, such as
    // text that is not UTF-8): HTTP 400; retrying will not help.
    kInvalid,
    // The router failed to store an event: HTTP 500.
    kFailed,
  };

  Outcome outcome = Outcome::kOk;
  // Why, for anything but kOk (for logs and error bodies).
  std::string detail;

  bool ok() const { return outcome == Outcome::kOk; }
  // The HTTP status a webhook transport answers: 200, 503, 400 or 500.
  int HttpStatus() const;
};

// The pipeline's way to the router: the AdapterRuntime in the binaries
// (RuntimeInboundRouter), a double that acknowledges when told in tests.
class InboundRouter {
 public:
  virtual ~InboundRouter() = default;

  // Queues `event` for the router. `done` runs once, on any thread (possibly
  // inside this call), with the router's acknowledgement, or with an error
  // when the event could not be queued. Must not block.
  virtual void Publish(
      v1::Event event,
      std::function<void(absl::StatusOr<v1::PublishAck>)> done) = 0;

  // Stores a file in the router's blob store; blocks. `read` fills up to
  // `max` bytes and returns how many (0 at the end). kResourceExhausted
  // when the file is over the router's blob limit.
  virtual absl::StatusOr<v1::BlobRef> PutBlob(
      const v1::BlobMeta& meta,
      const std::function<absl::StatusOr<size_t>(char* buffer, size_t max)>&
          read) = 0;
};

// Where one raw input goes: the origin chat whose lane it joins, and the key
// that identifies it for in-flight deduplication.
struct InboundRoute {
  // The lane: inputs with the same chat are handled strictly one after
  // another in submission order. Opaque; include the account when a process
  // serves several. Empty is a lane of its own (account-wide events such as
  // presence).
  std::string chat;
  // The messenger's id of the input (event id, update id). While an input
  // with the same key is queued or in progress, a new one joins it and gets
  // its result. Empty: never coalesced.
  std::string key;
  // The conversion is quick and never blocks (it only builds the events
  // from the parsed input: no messenger call, no lookup that may miss a
  // cache): the pipeline then converts and publishes the input on the thread
  // that submits it (or that handed the lane's previous such input to the
  // router) instead of handing it to a convert worker, one thread hand-off
  // fewer per message. Its files, if any, are still fetched on a download
  // slot.
  bool convert_here = false;
};

// The route of an input of a connector that serves several accounts: the
// lane "<account>/<chat>" (`chat`: the origin chat) and the key
// "<account>:<id>" (`id`: the messenger's id of the input), so that inputs
// of two accounts neither share a lane nor coalesce. Pure.
InboundRoute AccountInboundRoute(absl::string_view account,
                                 absl::string_view chat, absl::string_view id);

// What a messenger implements for its inbound side (as a mautrix bridgev2
// connector): where a raw input goes, and how it becomes bridge events.
// `Raw` is the messenger's verified, parsed input (a webhook event, a
// polled update). Both methods may be called from several threads at once
// for different inputs. Exceptions are caught by the pipeline and make the
// input kInvalid.
template <typename Raw>
class InboundConnector {
 public:
  virtual ~InboundConnector() = default;

  // Cheap and non-blocking (runs on the transport's thread). An error
  // refuses the input as invalid.
  virtual absl::StatusOr<InboundRoute> Route(const Raw& raw) = 0;

  // Turns the input into events and the files to fetch for them. May block
  // (runs on a pipeline worker). A retryable error (RetryableError) makes
  // the input kRetry; any other error kInvalid.
  virtual absl::StatusOr<InboundConversion> Convert(const Raw& raw) = 0;
};

// The shared inbound path of every adapter. A transport (webhook server,
// Socket Mode, long polling) hands it verified raw input; it converts the
// input through the messenger's connector, copies its files into the blob
// store (through a temporary file, never whole in memory), publishes the
// events and reports the outcome only after the router acknowledged them,
// so that the transport acknowledges its messenger (HTTP answer, envelope
// ack, polling offset) only then.
//
// Order: one serial lane per origin chat; lanes run in parallel. A lane
// converts (and fetches the files of) one input at a time and starts the
// next only after the previous one's events were handed to the router, so a
// message waiting for its file is never overtaken by the next message of
// its chat. The router acknowledges after its durable commit; a lane does
// not wait for that before publishing its next input (up to
// `max_lane_in_flight` inputs published and not yet acknowledged), because
// the stream to the router is ordered, the router commits a chat's events in
// stream order, and it refuses (FAILED) an event published behind an event
// of the same chat it failed to store (see RouterClient::Publish). Answers
// are given in the lane's order. When an input fails in a way the transport
// retries (kRetry, kFailed), the inputs behind it in its lane that were not
// published yet are answered kRetry without being converted, for the
// transport to deliver them again after it; the ones already published get
// the router's answer (FAILED, so kFailed).
//
// Bounds: at most `max_inputs` inputs are held (queued or in progress), at
// most `max_lane_inputs` in one lane; beyond that Submit() refuses with
// kResourceExhausted and the transport answers 503 or pauses. Conversions
// run on `convert_threads` workers, file copies on `download_slots`.
//
// Threading: all public methods are thread-safe and never block, except
// WaitForRoom() and Stop(). An input routed with `convert_here` is
// converted and published inside Submit() (or inside the Submit() or worker
// that published its lane's previous input), so Submit() then takes as
// long as the conversion and the router's Publish(). Done callbacks run on
// a pipeline worker, on the router's acknowledging thread, or, for an input
// with `convert_here` whose conversion or publish failed at once, inside a
// Submit(); they must not block and must not call Stop().
class InboundPipeline {
 public:
  struct Options {
    // Bigger files become attachments with an unavailable_reason.
    uint64_t max_file_bytes = 100ull << 20;
    // Threads that run Convert(); default 2.
    int convert_threads = 2;
    // Files copied at the same time; default 4.
    int download_slots = 4;
    // Inputs held in all lanes together, and in one lane.
    size_t max_inputs = 4096;
    size_t max_lane_inputs = 256;
    // Inputs of one lane published and waiting for the router's
    // acknowledgement at once; 1 makes a lane wait for each acknowledgement
    // before publishing the next input. Default 64.
    size_t max_lane_in_flight = 64;
    // How long Stop() waits for inputs in progress to be acknowledged.
    absl::Duration stop_timeout = absl::Seconds(5);
  };

  // What a transport learns about one input.
  using DoneCallback = std::function<void(const InboundResult& result)>;

  // `router` must outlive the pipeline, and must not call a publish
  // callback after the pipeline is destroyed (the AdapterRuntime stops its
  // router client, dropping pending callbacks, before main's locals go).
  InboundPipeline(Options options, InboundRouter* router);
  ~InboundPipeline();  // Calls Stop().

  InboundPipeline(const InboundPipeline&) = delete;
  InboundPipeline& operator=(const InboundPipeline&) = delete;

  // Queues one input: `convert` runs on a worker when its lane reaches it
  // (it may throw; it is destroyed after it ran). Returns OK when the input
  // was taken (or joined one with the same key): `done` then runs exactly
  // once. Otherwise `done` is never called: kResourceExhausted when the
  // pipeline or the lane is full, kUnavailable after Stop().
  absl::Status Submit(
      const InboundRoute& route,
      std::function<absl::StatusOr<InboundConversion>()> convert,
      DoneCallback done);

  // Routes `raw` through `connector` (which must outlive the input) and
  // queues it. As Submit() above, plus kInvalidArgument (done never called)
  // when Route() refused the input or threw.
  template <typename Raw>
  absl::Status Submit(InboundConnector<Raw>* connector, Raw raw,
                      DoneCallback done);

  // Blocks until an input for `chat` would be taken (the pipeline and that
  // lane have room), up to `timeout`; for polling transports that paused.
  // True if there is room.
  bool WaitForRoom(absl::string_view chat, absl::Duration timeout);

  // Inputs held now (queued or in progress).
  size_t held() const;

  // Refuses new inputs; answers queued ones kRetry; lets conversions and
  // file copies in progress finish; waits up to stop_timeout for their
  // acknowledgements, then answers the rest kRetry. Idempotent.
  void Stop();

 private:
  struct Input;
  // One chat's inputs in order: published ones (waiting for the router or
  // for an earlier input's answer), then at most one active one (converting,
  // fetching files), then queued ones.
  struct Lane {
    std::deque<std::shared_ptr<Input>> inputs;
    // The input converting, fetching its files or being handed to the
    // router, if any.
    std::shared_ptr<Input> active;
    // An input failed in a way its transport retries: inputs not published
    // yet are answered kRetry until the lane has drained.
    bool broken = false;
  };
  // Answers to give once the lock is released, in this order.
  using Answers = std::vector<std::pair<DoneCallback, InboundResult>>;

  // Submit() under mu_: queues the input (or joins it to one with its
  // key); *here is set to an input the caller is to Run().
  absl::Status TakeLocked(
      const InboundRoute& route,
      std::function<absl::StatusOr<InboundConversion>()> convert,
      DoneCallback done, std::shared_ptr<Input>* here)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Converts `input` and what StartNextLocked hands this thread after it,
  // one after another.
  void Run(std::shared_ptr<Input> input);
  // Converts, then copies files (posted to a download slot) or publishes.
  // Returns the lane's next input when this thread is to convert it (one
  // with convert_here), else null.
  std::shared_ptr<Input> Convert(const std::shared_ptr<Input>& input);
  // Runs on a download slot: copies the files, then publishes.
  void CopyFiles(const std::shared_ptr<Input>& input);
  // Copies one file; returns a retryable error, or OK (with the attachment
  // filled in, or marked unavailable).
  absl::Status CopyFile(const InboundFile& file, v1::Attachment* attachment);
  // Publishes all of the input's events, then lets its lane go on; returns
  // as Convert().
  std::shared_ptr<Input> Publish(const std::shared_ptr<Input>& input);
  // Records the acknowledgement of one of the input's events.
  void Acknowledged(const std::shared_ptr<Input>& input,
                    absl::StatusOr<v1::PublishAck> ack);
  // Records the input's result; answers the lane's finished inputs from its
  // front and starts the lane's next input.
  void Finish(const std::shared_ptr<Input>& input, InboundResult result);
  // Records `result` for `input` (the first result counts) and collects
  // the answers that became due in its lane.
  void FinishLocked(const std::shared_ptr<Input>& input, InboundResult result,
                    Answers* answers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the lane's next queued input if it may start: returns it when
  // `here` and it has convert_here (the caller runs it, after releasing
  // mu_), else posts it to a convert worker and returns null.
  std::shared_ptr<Input> StartNextLocked(const std::string& chat, bool here)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Answer(Answers& answers);

  const Options options_;
  InboundRouter* const router_;
  // Reset (joined) by Stop(); only posted to while !stopped_ (converters)
  // or from a converter thread (downloads, joined after the converters).
  std::unique_ptr<Executor> converters_;
  std::unique_ptr<Executor> downloads_;

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Lane> lanes_ ABSL_GUARDED_BY(mu_);
  // Inputs by key, while held.
  absl::flat_hash_map<std::string, std::shared_ptr<Input>> by_key_
      ABSL_GUARDED_BY(mu_);
  size_t held_ ABSL_GUARDED_BY(mu_) = 0;
  // Submit() calls converting inputs on their own thread (Stop() waits for
  // them before it lets the download slots go).
  size_t submitters_converting_ ABSL_GUARDED_BY(mu_) = 0;
};

// The description of an exception caught from a connector.
std::string DescribeCurrentException();

template <typename Raw>
absl::Status InboundPipeline::Submit(InboundConnector<Raw>* connector, Raw raw,
                                     DoneCallback done) {
  absl::StatusOr<InboundRoute> route;
  try {
    route = connector->Route(raw);
  } catch (...) {
    route = absl::InvalidArgumentError(
        absl::StrCat("connector failed: ", DescribeCurrentException()));
  }
  if (!route.ok()) return absl::InvalidArgumentError(route.status().message());
  auto shared = std::make_shared<Raw>(std::move(raw));
  return Submit(
      *route, [connector, shared] { return connector->Convert(*shared); },
      std::move(done));
}

}  // namespace imbridge::adapters

#endif  // IMBRIDGE_ADAPTERS_COMMON_INBOUND_PIPELINE_H_
