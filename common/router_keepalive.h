#ifndef IMBRIDGE_COMMON_ROUTER_KEEPALIVE_H_
#define IMBRIDGE_COMMON_ROUTER_KEEPALIVE_H_

// Keepalive pings on the adapters' connections to a router (router.proto's
// Router service): both sides' settings, kept together because one side
// without the other breaks the streams.
//
// A router that goes silent with its connection open (a lost network, a
// frozen host) is noticed within about kRouterKeepaliveTime +
// kRouterKeepaliveTimeout instead of when TCP gives up (minutes): the
// adapter's stream fails and its publishing moves to the next router. gRPC
// servers answer pings that often, on idle streams, with GOAWAY
// "too_many_pings" unless told otherwise, so every server of the Router
// service (the router, and the stand-ins of tests and benchmarks) accepts
// them with AcceptRouterKeepalive.

#include "absl/time/time.h"
#include "grpc/grpc.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/channel_arguments.h"

namespace imbridge {

// A ping after this long without one, on every connection, even idle.
inline constexpr absl::Duration kRouterKeepaliveTime = absl::Milliseconds(250);
// The connection is given up when a ping's answer takes longer.
inline constexpr absl::Duration kRouterKeepaliveTimeout = absl::Seconds(1);

// For the adapters' channels to a router.
inline void SetRouterKeepalive(grpc::ChannelArguments& args) {
  const int time_ms =
      static_cast<int>(absl::ToInt64Milliseconds(kRouterKeepaliveTime));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, time_ms);
  args.SetInt(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(kRouterKeepaliveTimeout)));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Keep pinging while no data flows (gRPC stops after 2 by default).
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, time_ms);
}

// For every server of the Router service: accepts those pings.
inline void AcceptRouterKeepalive(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(kRouterKeepaliveTime)) / 2);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

}  // namespace imbridge

#endif  // IMBRIDGE_COMMON_ROUTER_KEEPALIVE_H_
