// imbridge-http-bench: measures the HTTP paths of issue 11 with the real
// processes.
//
// Starts the real imbridge-router (store.durability full, temporary data
// dir), the real imbridge-adapter-webhook and, for --path=slack|both, the
// real imbridge-adapter-slack in HTTP mode (its Web API pointed at a small
// fake served here), all on 127.0.0.1 port 0. Two links in the router's
// config carry feed-only placeholder members (a link needs two members); an
// incoming webhook and outgoing webhooks are added to them through the Admin
// API, as imbridgectl does. The bench POSTs with its own keep-alive HTTP/1.1
// client to /hooks/<id>/<key> (path "webhook") or, signed with Slack's v0
// HMAC, to /slack/<account>/events (path "slack"). The outgoing webhooks
// point at a receiver in this process that answers 200 at once and reads the
// send time carried in the message text. --chats spreads the messages over
// several incoming webhooks or Slack channels: the adapters keep order with
// one serial lane per chat, so one chat measures a single lane. Phases:
//   0. ceiling: the same client against the receiver directly (no bridge),
//      closed loop and paced at --rate; the bridge's figures are also given
//      as ratios of these, which hold better than absolute figures on a
//      machine whose speed drifts;
// then per path, in this order so that the adapter's peak RSS is the one of
// the paced load:
//   1. CPU: paced at 500 messages/s; utime+stime of the router and the
//      adapters (from /proc/<pid>/stat) per delivered message;
//   2. latency: paced at --rate; send-to-receipt p50/p99, then the ingress
//      adapter's and the router's VmHWM, and the adapter's RssAnon and PSS;
//   3. closed loop: --connections keep-alive connections, as fast as the
//      adapter answers; accepted/s, delivered/s and the backlog at the end.
// Each phase sends at most --messages messages and runs at most --duration
// seconds. Each path's results are printed as a table and as one HTTPBENCH
// line (tools/http_bench/bench_line.h).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/http/hmac.h"
#include "common/http/http_server.h"
#include "tools/http_bench/bench_line.h"
#include "tools/imbridgectl/admin_client.h"

namespace {

namespace v1 = imbridge::v1;
using imbridge::tools::FormatBenchLine;

constexpr char kAdapterToken[] = "http-bench-adapter-token-0123456789";
constexpr char kAdminToken[] = "http-bench-admin-token-0123456789";
constexpr char kMarker[] = "benchts=";

struct Flags {
  int64_t messages = 20000;
  int rate = 2000;
  int connections = 32;
  std::string path = "webhook";
  int duration = 10;
  int chats = 1;
  std::string bin_dir;
};

int64_t NowNanos() { return absl::GetCurrentTimeNanos(); }

void Usage() {
  std::fprintf(stderr,
               "usage: imbridge-http-bench [--messages=N] [--rate=R] "
               "[--connections=C] [--path=webhook|slack|both] [--duration=S] "
               "[--chats=N] "
               "[--bin-dir=DIR]\n"
               "  --messages     at most N messages per phase (20000)\n"
               "  --rate         paced rate of the latency phase, msgs/s "
               "(2000)\n"
               "  --connections  keep-alive connections (32)\n"
               "  --path         webhook, slack or both (webhook)\n"
               "  --duration     at most S seconds per phase (10)\n"
               "  --chats        incoming webhooks / Slack channels the "
               "messages are spread over, 1 to 64 (1)\n"
               "  --bin-dir      the build directory holding bridge/ and "
               "adapters/ (default: from argv[0])\n");
}

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto value = [&](absl::string_view name, std::string* out) {
      std::string prefix = absl::StrCat("--", name, "=");
      if (!absl::StartsWith(a, prefix)) return false;
      *out = std::string(a.substr(prefix.size()));
      return true;
    };
    std::string v;
    bool ok = true;
    if (a == "--help") {
      Usage();
      std::exit(0);
    } else if (value("messages", &v)) {
      ok = absl::SimpleAtoi(v, &f->messages) && f->messages > 0;
    } else if (value("rate", &v)) {
      ok = absl::SimpleAtoi(v, &f->rate) && f->rate > 0;
    } else if (value("connections", &v)) {
      ok = absl::SimpleAtoi(v, &f->connections) && f->connections > 0 &&
           f->connections <= 1024;
    } else if (value("duration", &v)) {
      ok = absl::SimpleAtoi(v, &f->duration) && f->duration > 0;
    } else if (value("path", &v)) {
      f->path = v;
      ok = v == "webhook" || v == "slack" || v == "both";
    } else if (value("chats", &v)) {
      ok = absl::SimpleAtoi(v, &f->chats) && f->chats > 0 && f->chats <= 64;
    } else if (value("bin-dir", &v)) {
      f->bin_dir = v;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "bad flag: %s\n", argv[i]);
      return false;
    }
  }
  return true;
}

// A child process of the bench, killed when this object goes away.
class Child {
 public:
  Child(const std::string& binary, const std::string& config,
        const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      // The child's output (both streams) goes to its log.
      if (std::freopen(log.c_str(), "w", stderr) != nullptr) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
      }
      closefrom(STDERR_FILENO + 1);  // The child gets none of our sockets.
      execl(binary.c_str(), binary.c_str(), "--config", config.c_str(),
            nullptr);
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 200; ++i) {
        if (waitpid(pid_, &status, WNOHANG) == pid_) return;
        absl::SleepFor(absl::Milliseconds(25));
      }
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  pid_t pid() const { return pid_; }
  bool running() const {
    int status = 0;
    return pid_ > 0 && waitpid(pid_, &status, WNOHANG) == 0;
  }

 private:
  pid_t pid_ = -1;
};

// Waits for a port written to `file` by a starting child.
int WaitForPort(const std::string& file, const Child& child) {
  for (int i = 0; i < 3000 && child.running(); ++i) {
    std::ifstream in(file);
    int port = 0;
    if (in >> port && port > 0) return port;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return 0;
}

// A "<field> <n> kB" line of /proc/<pid>/<file> (status, smaps_rollup), in
// KiB; 0 when absent.
int64_t ReadProcKb(pid_t pid, const char* file, const char* field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/", file));
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, field)) {
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits.push_back(c);
      }
      int64_t kb = 0;
      (void)absl::SimpleAtoi(digits, &kb);
      return kb;
    }
  }
  return 0;
}

// utime + stime of all threads of `pid`, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start at ") ".
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> f =
      absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  if (f.size() < 13) return 0;
  int64_t utime = 0, stime = 0;
  (void)absl::SimpleAtoi(f[11], &utime);
  (void)absl::SimpleAtoi(f[12], &stime);
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

// One keep-alive HTTP/1.1 connection to 127.0.0.1 that POSTs JSON and reads
// the status of each answer.
class Connection {
 public:
  explicit Connection(int port) : port_(port) {}
  ~Connection() { Close(); }

  // POSTs `body` with `headers` (complete lines, each ending in CRLF) and
  // returns the answer's status, or 0 on a transport error (the connection
  // is then reopened on the next call).
  int Post(const std::string& path, const std::string& headers,
           const std::string& body) {
    if (fd_ < 0 && !Open()) return 0;
    std::string request = absl::StrCat(
        "POST ", path,
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n",
        headers, "Content-Length: ", body.size(), "\r\n\r\n", body);
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n =
          send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return Fail();
      sent += static_cast<size_t>(n);
    }
    // Reads the head, then Content-Length bytes of body.
    size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Read()) return Fail();
    }
    int status = 0;
    if (buffer_.size() < 12 ||
        !absl::SimpleAtoi(absl::string_view(buffer_).substr(9, 3), &status)) {
      return Fail();
    }
    size_t length = 0;
    std::string head = absl::AsciiStrToLower(buffer_.substr(0, head_end));
    size_t cl = head.find("content-length:");
    if (cl != std::string::npos) {
      size_t eol = head.find("\r\n", cl);
      (void)absl::SimpleAtoi(
          absl::StripAsciiWhitespace(
              absl::string_view(head).substr(cl + 15, eol - cl - 15)),
          &length);
    }
    bool close = absl::StrContains(head, "connection: close");
    while (buffer_.size() < head_end + 4 + length) {
      if (!Read()) return Fail();
    }
    buffer_.erase(0, head_end + 4 + length);
    if (close) Close();
    return status;
  }

 private:
  bool Open() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    buffer_.clear();
    return true;
  }
  bool Read() {
    char chunk[4096];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  int Fail() {
    Close();
    return 0;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buffer_.clear();
  }

  int port_;
  int fd_ = -1;
  std::string buffer_;
};

// One request of a path: where it goes, its extra header lines, its body.
struct Request {
  std::string path;
  std::string headers;
  std::string body;
};

// Makes the request of message `n`; its text carries the send time.
using RequestMaker = std::function<Request(int64_t n)>;

std::string MessageText(int64_t n) {
  return absl::StrCat("bench message ", n, " ", kMarker, NowNanos());
}

// POST /hooks/<id>/<key> of the webhook adapter, message n to hook n % size.
RequestMaker WebhookRequests(std::vector<std::string> hooks) {
  return [hooks](int64_t n) {
    return Request{hooks[static_cast<size_t>(n) % hooks.size()], "",
                   absl::StrCat(R"({"username":"bench","text":")",
                                MessageText(n), R"("})")};
  };
}

// A signed Slack Events API message event, as Slack sends it
// (../shared/platforms.md: v0 HMAC-SHA256 over "v0:<ts>:<body>"), message n
// in channel CBENCH<n % channels>.
RequestMaker SlackRequests(std::string account, std::string secret,
                           int channels) {
  return [account, secret, channels](int64_t n) {
    int64_t now_s = absl::ToUnixSeconds(absl::Now());
    std::string ts =
        absl::StrCat(now_s, ".", absl::StrFormat("%06d", n % 1000000));
    std::string body = absl::StrCat(
        R"({"token":"bench","team_id":"TBENCH","api_app_id":"ABENCH",)",
        R"("type":"event_callback","event_id":"EvBENCH)", n,
        R"(","event_time":)", now_s,
        R"(,"event":{"type":"message","channel":"CBENCH)", n % channels,
        R"(","channel_type":"channel",)", R"("user":"UBENCH","text":")",
        MessageText(n), R"(","ts":")", ts, R"(","event_ts":")", ts, R"("}})");
    std::string stamp = absl::StrCat(now_s);
    std::string signature = absl::StrCat(
        "v0=",
        imbridge::HmacSha256Hex(secret, absl::StrCat("v0:", stamp, ":", body)));
    return Request{absl::StrCat("/slack/", account, "/events"),
                   absl::StrCat("X-Slack-Request-Timestamp: ", stamp,
                                "\r\nX-Slack-Signature: ", signature, "\r\n"),
                   body};
  };
}

// Message numbers are unique over the whole run (Slack event ids are made of
// them and the router drops a repeated one as a duplicate).
std::atomic<int64_t> g_next_message{0};

// Answers every POST with 200 at once and records the latency from the send
// time carried in the body.
class Receiver {
 public:
  Receiver() : server_(Options()) {
    server_.Handle("POST", "/in",
                   [this](imbridge::HttpRequest request,
                          std::shared_ptr<imbridge::Responder> r) {
                     Record(request.body);
                     r->Respond(200, "application/json", R"({"ok":true})");
                   });
  }
  absl::Status Start() { return server_.Start(); }
  int port() const { return server_.port(); }
  int64_t received() const { return received_.load(); }

  void StartRecording() {
    absl::MutexLock lock(&mu_);
    latencies_us_.clear();
    recording_ = true;
  }
  std::vector<int64_t> StopRecording() {
    absl::MutexLock lock(&mu_);
    recording_ = false;
    return std::move(latencies_us_);
  }

 private:
  static imbridge::HttpServer::Options Options() {
    imbridge::HttpServer::Options o;
    o.port = 0;
    return o;
  }
  void Record(const std::string& body) {
    int64_t now = NowNanos();
    received_.fetch_add(1);
    size_t at = body.find(kMarker);
    if (at == std::string::npos) return;
    size_t end = at + sizeof(kMarker) - 1;
    size_t stop = end;
    while (stop < body.size() && body[stop] >= '0' && body[stop] <= '9') ++stop;
    int64_t sent = 0;
    if (!absl::SimpleAtoi(absl::string_view(body).substr(end, stop - end),
                          &sent)) {
      return;
    }
    absl::MutexLock lock(&mu_);
    if (recording_) latencies_us_.push_back((now - sent) / 1000);
  }

  imbridge::HttpServer server_;
  std::atomic<int64_t> received_{0};
  absl::Mutex mu_;
  bool recording_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<int64_t> latencies_us_ ABSL_GUARDED_BY(mu_);
};

struct SendResult {
  int64_t accepted = 0;  // Answered 200.
  int64_t refused = 0;   // Answered otherwise, or a transport error.
  double seconds = 0;    // From the first send to the last answer.
};

// Sends up to `messages` POSTs to `port`/`path` over `connections`
// connections for at most `duration`: as fast as answered when `rate` is 0,
// else message i at start + i/rate (a late message is sent at once).
SendResult Send(int port, const RequestMaker& make, int connections,
                int64_t messages, int rate, absl::Duration duration) {
  std::atomic<int64_t> next{0}, accepted{0}, refused{0};
  int64_t start = NowNanos();
  int64_t deadline = start + absl::ToInt64Nanoseconds(duration);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      Connection conn(port);
      while (true) {
        int64_t n = next.fetch_add(1);
        if (n >= messages) return;
        if (rate > 0) {
          int64_t at = start + n * 1000000000 / rate;
          int64_t wait = at - NowNanos();
          if (wait > 0) absl::SleepFor(absl::Nanoseconds(wait));
        }
        if (NowNanos() >= deadline) return;
        Request r = make(g_next_message.fetch_add(1));
        if (conn.Post(r.path, r.headers, r.body) == 200) {
          accepted.fetch_add(1);
        } else {
          refused.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  SendResult r;
  r.accepted = accepted.load();
  r.refused = refused.load();
  r.seconds = static_cast<double>(NowNanos() - start) / 1e9;
  return r;
}

// Waits until the receiver has `count` messages, or `timeout` passed.
bool WaitForReceived(const Receiver& receiver, int64_t count,
                     absl::Duration timeout) {
  absl::Time end = absl::Now() + timeout;
  while (receiver.received() < count) {
    if (absl::Now() > end) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

struct Percentiles {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  size_t samples = 0;
};

Percentiles Compute(std::vector<int64_t> us) {
  Percentiles p;
  p.samples = us.size();
  if (us.empty()) return p;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(q * static_cast<double>(us.size() - 1));
    return static_cast<double>(us[i]) / 1000.0;
  };
  p.p50_ms = at(0.50);
  p.p99_ms = at(0.99);
  p.max_ms = static_cast<double>(us.back()) / 1000.0;
  return p;
}

std::string Fixed(double v, int digits) {
  return absl::StrFormat("%.*f", digits, v);
}

std::string Ratio(double a, double b) { return b > 0 ? Fixed(a / b, 3) : "-"; }

std::string BinDir(const Flags& f, const char* argv0) {
  if (!f.bin_dir.empty()) return f.bin_dir;
  std::string self = argv0;
  return self.substr(0, self.rfind('/') + 1) + "../..";
}

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/http-bench-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

// The figures of the ceiling: the bench's client against its receiver.
struct Ceiling {
  double per_s = 0;
  Percentiles latency;
};

// Measures one path (phases 1-3) and prints its table and HTTPBENCH line.
// `ingress` is the adapter that takes the requests; `pids` are all processes
// of the bridge whose CPU is counted.
bool MeasurePath(const Flags& f, const std::string& name,
                 const std::string& description, int port,
                 const RequestMaker& make, pid_t ingress,
                 const std::vector<pid_t>& pids, pid_t router,
                 Receiver& receiver, const Ceiling& ceiling,
                 const std::string& logs) {
  // Waits until the adapter accepts and a message comes through.
  int64_t base = receiver.received();
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    Connection probe(port);
    Request r = make(g_next_message.fetch_add(1));
    ready = probe.Post(r.path, r.headers, r.body) == 200 &&
            WaitForReceived(receiver, base + 1, absl::Seconds(5));
    if (!ready) absl::SleepFor(absl::Milliseconds(50));
  }
  if (!ready) {
    std::fprintf(stderr, "%s: no message came through the bridge; see %s\n",
                 name.c_str(), logs.c_str());
    return false;
  }
  absl::Duration duration = absl::Seconds(f.duration);
  absl::Duration drain = absl::Seconds(std::max(60, 4 * f.duration));
  auto cpu_of = [](const std::vector<pid_t>& all) {
    double sum = 0;
    for (pid_t p : all) sum += CpuSeconds(p);
    return sum;
  };

  // Phase 1: CPU per message at 500/s.
  base = receiver.received();
  double cpu_before = cpu_of(pids);
  double router_before = CpuSeconds(router);
  SendResult cpu_run =
      Send(port, make, f.connections, f.messages, 500, duration);
  bool cpu_drained = WaitForReceived(receiver, base + cpu_run.accepted, drain);
  double router_cpu = CpuSeconds(router) - router_before;
  double cpu = cpu_of(pids) - cpu_before;
  int64_t cpu_delivered = receiver.received() - base;
  double per_msg = cpu_delivered > 0 ? 1e6 / cpu_delivered : 0;

  // Phase 2: latency at --rate, then peak RSS.
  base = receiver.received();
  receiver.StartRecording();
  SendResult lat_run =
      Send(port, make, f.connections, f.messages, f.rate, duration);
  bool lat_drained = WaitForReceived(receiver, base + lat_run.accepted, drain);
  Percentiles lat = Compute(receiver.StopRecording());
  int64_t adapter_hwm_kb = ReadProcKb(ingress, "status", "VmHWM:");
  int64_t router_hwm_kb = ReadProcKb(router, "status", "VmHWM:");
  // What of it is the adapter's own (heap, stacks) rather than mapped
  // library pages, and its proportional share of the shared pages.
  int64_t adapter_anon_kb = ReadProcKb(ingress, "status", "RssAnon:");
  int64_t adapter_pss_kb = ReadProcKb(ingress, "smaps_rollup", "Pss:");

  // Phase 3: closed loop.
  base = receiver.received();
  SendResult closed = Send(port, make, f.connections, f.messages, 0, duration);
  int64_t delivered_at_end = receiver.received() - base;
  bool closed_drained =
      WaitForReceived(receiver, base + closed.accepted, drain);
  double accepted_rps = closed.accepted / closed.seconds;
  double delivered_rps = delivered_at_end / closed.seconds;
  int64_t backlog = closed.accepted - delivered_at_end;
  // A backlog "grew" when more than 1 % of the accepted messages (and more
  // than 50) were not yet delivered when the senders stopped.
  bool backlog_grew = backlog > 50 && backlog * 100 > closed.accepted;
  bool all_delivered = cpu_drained && lat_drained && closed_drained;

  std::printf("\npath %s: %s\n%-48s %12s %12s %8s\n", name.c_str(),
              description.c_str(), "measure", "bridge", "ceiling", "ratio");
  auto row = [](const std::string& m, const std::string& b,
                const std::string& c, const std::string& r) {
    std::printf("%-48s %12s %12s %8s\n", m.c_str(), b.c_str(), c.c_str(),
                r.c_str());
  };
  row(absl::StrCat("closed loop accepted/s (", f.connections, " conns)"),
      Fixed(accepted_rps, 0), Fixed(ceiling.per_s, 0),
      Ratio(accepted_rps, ceiling.per_s));
  row("closed loop delivered/s", Fixed(delivered_rps, 0), "",
      Ratio(delivered_rps, ceiling.per_s));
  row("closed loop backlog at end (messages)", absl::StrCat(backlog), "",
      backlog_grew ? "GREW" : "ok");
  row("CPU phase: rate achieved (msgs/s, asked 500)",
      Fixed(cpu_run.accepted / cpu_run.seconds, 0), "", "");
  row(absl::StrCat("latency phase: rate achieved (msgs/s, asked ", f.rate, ")"),
      Fixed(lat_run.accepted / lat_run.seconds, 0), "", "");
  row("closed loop refused (non-200 or error)", absl::StrCat(closed.refused),
      "", "");
  row("CPU per message at 500/s, all processes (us)", Fixed(cpu * per_msg, 0),
      "", "");
  row("  of which the router (us)", Fixed(router_cpu * per_msg, 0), "", "");
  row(absl::StrCat("delivery p50 at ", f.rate, "/s (ms)"), Fixed(lat.p50_ms, 2),
      Fixed(ceiling.latency.p50_ms, 2),
      Ratio(lat.p50_ms, ceiling.latency.p50_ms));
  row(absl::StrCat("delivery p99 at ", f.rate, "/s (ms)"), Fixed(lat.p99_ms, 2),
      Fixed(ceiling.latency.p99_ms, 2),
      Ratio(lat.p99_ms, ceiling.latency.p99_ms));
  row("delivery max (ms)", Fixed(lat.max_ms, 2),
      Fixed(ceiling.latency.max_ms, 2), "");
  row("ingress adapter peak RSS (MiB)", Fixed(adapter_hwm_kb / 1024.0, 1), "",
      "");
  row("  anonymous RSS after that phase (MiB)",
      Fixed(adapter_anon_kb / 1024.0, 1), "", "");
  row("  PSS after that phase (MiB)", Fixed(adapter_pss_kb / 1024.0, 1), "",
      "");
  row("router peak RSS (MiB)", Fixed(router_hwm_kb / 1024.0, 1), "", "");
  if (!all_delivered) {
    std::printf("WARNING: not every accepted message was delivered within %s\n",
                absl::FormatDuration(drain).c_str());
  }
  std::printf(
      "%s\n",
      FormatBenchLine(
          {{"path", name},
           {"connections", absl::StrCat(f.connections)},
           {"closed_accepted", absl::StrCat(closed.accepted)},
           {"closed_refused", absl::StrCat(closed.refused)},
           {"closed_accepted_per_s", Fixed(accepted_rps, 0)},
           {"closed_delivered_per_s", Fixed(delivered_rps, 0)},
           {"closed_backlog", absl::StrCat(backlog)},
           {"closed_backlog_grew", backlog_grew ? "1" : "0"},
           {"chats", absl::StrCat(f.chats)},
           {"cpu_messages", absl::StrCat(cpu_delivered)},
           {"cpu_rate_achieved", Fixed(cpu_run.accepted / cpu_run.seconds, 0)},
           {"latency_rate_achieved",
            Fixed(lat_run.accepted / lat_run.seconds, 0)},
           {"cpu_us_per_msg", Fixed(cpu * per_msg, 1)},
           {"router_cpu_us_per_msg", Fixed(router_cpu * per_msg, 1)},
           {"rate", absl::StrCat(f.rate)},
           {"latency_samples", absl::StrCat(lat.samples)},
           {"p50_ms", Fixed(lat.p50_ms, 3)},
           {"p99_ms", Fixed(lat.p99_ms, 3)},
           {"adapter_hwm_kib", absl::StrCat(adapter_hwm_kb)},
           {"adapter_anon_kib", absl::StrCat(adapter_anon_kb)},
           {"adapter_pss_kib", absl::StrCat(adapter_pss_kb)},
           {"router_hwm_kib", absl::StrCat(router_hwm_kb)},
           {"ceiling_per_s", Fixed(ceiling.per_s, 0)},
           {"ceiling_p50_ms", Fixed(ceiling.latency.p50_ms, 3)},
           {"ceiling_p99_ms", Fixed(ceiling.latency.p99_ms, 3)},
           {"accepted_ratio", Ratio(accepted_rps, ceiling.per_s)},
           {"delivered_ratio", Ratio(delivered_rps, ceiling.per_s)},
           {"all_delivered", all_delivered ? "1" : "0"}})
          .c_str());
  std::fflush(stdout);
  return true;
}

// A fake of Slack's Web API for the Slack adapter: the bot's identity and
// one person; every other method answers {"ok":true}.
class FakeSlackApi {
 public:
  FakeSlackApi() : server_(imbridge::HttpServer::Options()) {
    server_.HandlePrefix(
        "POST", "/api/",
        [](imbridge::HttpRequest request,
           std::shared_ptr<imbridge::Responder> r) {
          std::string body = R"({"ok":true})";
          if (absl::EndsWith(request.path, "/auth.test")) {
            body = R"({"ok":true,"team_id":"TBENCH","user_id":"UBOT"})";
          } else if (absl::EndsWith(request.path, "/users.info")) {
            body = R"({"ok":true,"user":{"id":"UBENCH","name":"bench",)"
                   R"("real_name":"Bench Person","profile":{"display_name":)"
                   R"("Bench Person","real_name":"Bench Person"}}})";
          }
          r->Respond(200, "application/json", body);
        });
  }
  absl::Status Start() { return server_.Start(); }
  int port() const { return server_.port(); }

 private:
  imbridge::HttpServer server_;
};

// Runs the bench with its processes' files in `dir`; returns the exit code.
int Run(const Flags& f, const char* argv0, const std::string& dir) {
  std::string bin = BinDir(f, argv0);
  bool webhook_path = f.path == "webhook" || f.path == "both";
  bool slack_path = f.path == "slack" || f.path == "both";
  Receiver receiver;
  FakeSlackApi slack_api;
  for (absl::Status s : {receiver.Start(), slack_api.Start()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "local server: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  absl::Duration duration = absl::Seconds(f.duration);
  std::printf(
      "imbridge-http-bench: %d connections, at most %lld messages and %d s "
      "per phase, paced rate %d/s, %d chats, %ld CPUs online\n",
      f.connections, static_cast<long long>(f.messages), f.duration, f.rate,
      f.chats, sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);

  // Phase 0: the ceiling, before the bridge's processes start.
  Ceiling ceiling;
  RequestMaker direct = [](int64_t n) {
    return Request{"/in", "",
                   absl::StrCat(R"({"username":"bench","text":")",
                                MessageText(n), R"("})")};
  };
  SendResult closed =
      Send(receiver.port(), direct, f.connections, f.messages, 0, duration);
  ceiling.per_s = closed.accepted / closed.seconds;
  int64_t base = receiver.received();
  receiver.StartRecording();
  SendResult paced = Send(receiver.port(), direct, f.connections, f.messages,
                          f.rate, duration);
  WaitForReceived(receiver, base + paced.accepted, absl::Seconds(10));
  ceiling.latency = Compute(receiver.StopRecording());

  // The bridge: the router (durability full) and the adapters.
  {
    std::ofstream config(dir + "/router.yaml");
    config << "listen: 127.0.0.1:0\nhttp: {listen: '127.0.0.1:0'}\n"
           << "data_dir: " << dir << "/data\nlog_level: warn\n"
           << "admin_token: " << kAdminToken << "\n"
           << "adapters: [{name: bench, token: " << kAdapterToken << "}]\n"
           << "store: {durability: full}\n"
           // A link needs two members. On "hook" both only feed it
           // (direction IN) and are never served, so the incoming and
           // outgoing webhooks created below are its only path; on "slack"
           // the Slack channel feeds the outgoing webhook.
           << "links:\n"
           << "  - name: hook\n    members:\n"
           << "      - {platform: bench, account: none, chat_id: p1, "
              "direction: IN}\n"
           << "      - {platform: bench, account: none, chat_id: p2, "
              "direction: IN}\n"
           << "  - name: slack\n    members:\n"
           << "      - {platform: bench, account: none, chat_id: p3, "
              "direction: IN}\n";
    for (int c = 0; c < f.chats; ++c) {
      config << "      - {platform: slack, account: bench, chat_id: CBENCH" << c
             << ", direction: IN}\n";
    }
  }
  Child router(bin + "/bridge/imbridge-router", dir + "/router.yaml",
               dir + "/router.log");
  int router_port = WaitForPort(dir + "/data/router.port", router);
  if (router_port == 0) {
    std::fprintf(stderr, "the router did not start; see %s/router.log\n",
                 dir.c_str());
    return 1;
  }
  std::string router_address = absl::StrCat("127.0.0.1:", router_port);
  {
    std::ofstream config(dir + "/webhook.yaml");
    config << "router: {address: '" << router_address
           << "', token: " << kAdapterToken << "}\n"
           << "http: {listen: '127.0.0.1:0', port_file: " << dir
           << "/webhook.port}\nlog_level: warn\n";
  }
  Child webhook(bin + "/adapters/webhook/imbridge-adapter-webhook",
                dir + "/webhook.yaml", dir + "/webhook.log");
  int webhook_port = WaitForPort(dir + "/webhook.port", webhook);
  if (webhook_port == 0) {
    std::fprintf(stderr, "the webhook adapter did not start; see %s\n",
                 (dir + "/webhook.log").c_str());
    return 1;
  }

  // The webhooks, through the Admin API as imbridgectl creates them.
  imbridge::ctl::AdminClient admin(
      imbridge::ctl::AdminClient::Connect(router_address), kAdminToken,
      absl::Seconds(10));
  auto create = [&](const std::string& link, v1::WebhookDirection direction) {
    v1::CreateWebhookRequest request;
    request.set_link(link);
    request.set_direction(direction);
    if (direction == v1::OUTGOING) {
      request.set_url(
          absl::StrCat("http://127.0.0.1:", receiver.port(), "/in"));
    }
    return admin.CreateWebhook(request);
  };
  std::vector<absl::StatusOr<v1::CreateWebhookResponse>> created;
  for (int c = 0; c < f.chats; ++c) {
    created.push_back(create("hook", v1::INCOMING));
  }
  created.push_back(create("hook", v1::OUTGOING));
  created.push_back(create("slack", v1::OUTGOING));
  std::vector<std::string> hooks;
  for (const auto& r : created) {
    if (!r.ok()) {
      std::fprintf(stderr, "CreateWebhook: %s\n",
                   r.status().ToString().c_str());
      return 1;
    }
    if (r->webhook().direction() == v1::INCOMING) {
      hooks.push_back(
          absl::StrCat("/hooks/", r->webhook().id(), "/", r->secret()));
    }
  }

  bool ok = true;
  if (webhook_path) {
    ok = MeasurePath(
        f, "webhook",
        "incoming webhook -> router (durability full) -> outgoing webhook -> "
        "receiver",
        webhook_port, WebhookRequests(hooks), webhook.pid(),
        {router.pid(), webhook.pid()}, router.pid(), receiver, ceiling, dir);
  }
  if (ok && slack_path) {
    const std::string secret = "bench-signing-secret-0123456789";
    {
      std::ofstream config(dir + "/slack.yaml");
      config << "router: {address: '" << router_address
             << "', token: " << kAdapterToken << "}\n"
             << "http: {listen: '127.0.0.1:0', port_file: " << dir
             << "/slack.port}\nlog_level: warn\nstate_dir: " << dir
             << "/slack-state\naccounts:\n  - name: bench\n"
             << "    bot_token: xoxb-bench\n    signing_secret: " << secret
             << "\n    api_base_url: http://127.0.0.1:" << slack_api.port()
             << "/api\n    disable_presence: true\n";
    }
    Child slack(bin + "/adapters/slack/imbridge-adapter-slack",
                dir + "/slack.yaml", dir + "/slack.log");
    int slack_port = WaitForPort(dir + "/slack.port", slack);
    if (slack_port == 0) {
      std::fprintf(stderr, "the Slack adapter did not start; see %s\n",
                   (dir + "/slack.log").c_str());
      return 1;
    }
    ok = MeasurePath(
        f, "slack",
        "signed Slack Events -> router (durability full) -> outgoing webhook "
        "-> receiver",
        slack_port, SlackRequests("bench", secret, f.chats), slack.pid(),
        {router.pid(), slack.pid(), webhook.pid()}, router.pid(), receiver,
        ceiling, dir);
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) {
    Usage();
    return 2;
  }
  std::string dir = MakeTempDir();
  if (dir.empty()) {
    std::perror("mkdtemp");
    return 1;
  }
  int code = Run(flags, argv[0], dir);
  // The processes have stopped; their logs are kept when something failed.
  if (code == 0) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  return code;
}
