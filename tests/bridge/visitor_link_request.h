#ifndef IMBRIDGE_TESTS_BRIDGE_VISITOR_LINK_REQUEST_H_
#define IMBRIDGE_TESTS_BRIDGE_VISITOR_LINK_REQUEST_H_

#include <string>
#include <utility>
#include <vector>

#include "imbridge/v1/router.pb.h"

namespace imbridge::bridge {

// The Chatlio adapter's request for a visitor's link, as the router tests
// use it: a create of "chatlio-u-1" with {slack C1, teamspirit c42, chatlio
// conversation:u-1} (account "main"), member 1 narrowed to the thread of
// the copy of notice `message_id` posted in chatlio/main/notices.
inline v1::LinkRequest VisitorLinkRequest(const std::string& message_id) {
  v1::LinkRequest request;
  v1::Link* link = request.mutable_create();
  link->set_name("chatlio-u-1");
  for (const auto& [platform, chat] :
       std::vector<std::pair<std::string, std::string>>{
           {"slack", "C1"},
           {"teamspirit", "c42"},
           {"chatlio", "conversation:u-1"}}) {
    v1::LinkMember* m = link->add_members();
    m->set_platform(platform);
    m->set_account("main");
    m->set_chat_id(chat);
  }
  v1::MemberThreadRoot* root = request.add_member_thread_roots();
  root->set_member(1);
  root->mutable_origin()->set_platform("chatlio");
  root->mutable_origin()->set_account("main");
  root->mutable_origin()->set_chat_id("notices");
  root->set_message_id(message_id);
  return request;
}

}  // namespace imbridge::bridge

#endif  // IMBRIDGE_TESTS_BRIDGE_VISITOR_LINK_REQUEST_H_
