#include "adapters/common/attachment_kind.h"

#include "gtest/gtest.h"

namespace imbridge::adapters {
namespace {

TEST(AttachmentKindTest, MediaTypesByTheirTopLevelType) {
  EXPECT_EQ(AttachmentKindForMime("image/png"), v1::Attachment::IMAGE);
  EXPECT_EQ(AttachmentKindForMime("image/jpeg"), v1::Attachment::IMAGE);
  EXPECT_EQ(AttachmentKindForMime("image/gif"), v1::Attachment::ANIMATION);
  EXPECT_EQ(AttachmentKindForMime("video/mp4"), v1::Attachment::VIDEO);
  EXPECT_EQ(AttachmentKindForMime("audio/ogg"), v1::Attachment::AUDIO);
  EXPECT_EQ(AttachmentKindForMime("application/pdf"), v1::Attachment::FILE);
  EXPECT_EQ(AttachmentKindForMime("text/plain"), v1::Attachment::FILE);
}

TEST(AttachmentKindTest, CaseAndParametersDoNotMatter) {
  EXPECT_EQ(AttachmentKindForMime("Image/PNG"), v1::Attachment::IMAGE);
  EXPECT_EQ(AttachmentKindForMime("IMAGE/GIF"), v1::Attachment::ANIMATION);
  EXPECT_EQ(AttachmentKindForMime("image/gif; name=x.gif"),
            v1::Attachment::ANIMATION);
  EXPECT_EQ(AttachmentKindForMime(" audio/mpeg ;rate=44100"),
            v1::Attachment::AUDIO);
}

TEST(AttachmentKindTest, EmptyOrMalformedIsAFile) {
  EXPECT_EQ(AttachmentKindForMime(""), v1::Attachment::FILE);
  EXPECT_EQ(AttachmentKindForMime("image"), v1::Attachment::FILE);
  EXPECT_EQ(AttachmentKindForMime("imagex/png"), v1::Attachment::FILE);
  EXPECT_EQ(AttachmentKindForMime(";image/png"), v1::Attachment::FILE);
}

}  // namespace
}  // namespace imbridge::adapters
