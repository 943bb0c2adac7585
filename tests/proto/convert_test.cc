// Round trips through the one proto <-> C++ conversion place (proto/convert.h,
// worker/dtype_wire.h). Reflection over the messages makes a field added to
// types.proto and forgotten here fail these tests.
#include "proto/convert.h"

#include <random>

#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "gtest/gtest.h"
#include "worker/dtype_wire.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using ::google::protobuf::FieldDescriptor;

void ExpectSame(const SamplingParams& a, const SamplingParams& b) {
  EXPECT_EQ(a.temperature, b.temperature);
  EXPECT_EQ(a.top_k, b.top_k);
  EXPECT_EQ(a.top_p, b.top_p);
  EXPECT_EQ(a.min_p, b.min_p);
  EXPECT_EQ(a.repetition_penalty, b.repetition_penalty);
  EXPECT_EQ(a.repeat_last_n, b.repeat_last_n);
  EXPECT_EQ(a.seed, b.seed);
}

SamplingParams Random(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> f(0.0f, 2.0f);
  SamplingParams p;
  p.temperature = f(rng);
  p.top_k = static_cast<int32_t>(rng() % 1000);
  p.top_p = f(rng) / 2;
  p.min_p = f(rng) / 2;
  p.repetition_penalty = f(rng) + 0.5f;
  p.repeat_last_n = static_cast<int32_t>(rng() % 512);
  p.seed = rng();
  return p;
}

TEST(ConvertTest, SamplingSurvivesTheWireExactly) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200; ++i) {
    const SamplingParams p = Random(rng);
    v1::SamplingParameters w;
    SamplingToProto(p, &w);
    v1::SamplingParameters parsed;
    ASSERT_TRUE(parsed.ParseFromString(w.SerializeAsString()));
    ExpectSame(SamplingGivenFromProto(parsed).Apply(Random(rng)), p);
  }
}

TEST(ConvertTest, SamplingToProtoSetsEveryFieldTheMessageHas) {
  v1::SamplingParameters w;
  SamplingToProto(SamplingParams{}, &w);
  const auto* d = v1::SamplingParameters::descriptor();
  const auto* r = v1::SamplingParameters::GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    EXPECT_TRUE(r->HasField(w, d->field(i))) << d->field(i)->name() << " is never sent";
  }
}

// Each field, alone, replaces only its own value in the base.
TEST(ConvertTest, EachFieldAClientSetsOverridesOnlyItself) {
  std::mt19937_64 rng(7);
  const SamplingParams base = Random(rng);
  ExpectSame(SamplingGivenFromProto(v1::SamplingParameters()).Apply(base), base);
  v1::SamplingParameters full;
  SamplingToProto(Random(rng), &full);
  const auto* d = v1::SamplingParameters::descriptor();
  const auto* r = v1::SamplingParameters::GetReflection();
  int changed_fields = 0;
  for (int i = 0; i < d->field_count(); ++i) {
    v1::SamplingParameters one;
    const FieldDescriptor* f = d->field(i);
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(&one, f, r->GetFloat(full, f));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(&one, f, r->GetInt32(full, f));
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        r->SetUInt64(&one, f, r->GetUInt64(full, f));
        break;
      default:
        ADD_FAILURE() << f->name() << ": a field type this test does not know";
    }
    const SamplingParams got = SamplingGivenFromProto(one).Apply(base);
    v1::SamplingParameters back;
    SamplingToProto(got, &back);
    // The field came through, and nothing else moved.
    v1::SamplingParameters want;
    SamplingToProto(base, &want);
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_FLOAT:
        r->SetFloat(&want, f, r->GetFloat(full, f));
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        r->SetInt32(&want, f, r->GetInt32(full, f));
        break;
      default:
        r->SetUInt64(&want, f, r->GetUInt64(full, f));
        break;
    }
    EXPECT_EQ(back.SerializeAsString(), want.SerializeAsString()) << f->name();
    ++changed_fields;
  }
  EXPECT_EQ(changed_fields, 7);
}

TEST(ConvertTest, GivenSamplingSendsOnlyWhatTheUserGaveAndTheSeed) {
  SamplingDefaults given;
  given.top_p = 0.5f;
  v1::SamplingParameters w;
  GivenSamplingToProto(given, 99, &w);
  EXPECT_TRUE(w.has_top_p());
  EXPECT_EQ(w.top_p(), 0.5f);
  EXPECT_TRUE(w.has_seed());
  EXPECT_EQ(w.seed(), 99u);
  EXPECT_FALSE(w.has_temperature());
  EXPECT_FALSE(w.has_top_k());
  EXPECT_FALSE(w.has_min_p());
  EXPECT_FALSE(w.has_repetition_penalty());
  EXPECT_FALSE(w.has_repeat_last_n());
}

TEST(DTypeWireTest, EveryWireValueReadsBackAndEveryWireTypeRoundTrips) {
  const auto* d = v1::DType_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    const int value = d->value(i)->number();
    absl::StatusOr<kernels::DType> t = DTypeFromProto(value, kernels::DType::kF32, "x");
    ASSERT_TRUE(t.ok()) << d->value(i)->name();
    if (value != v1::DTYPE_UNSPECIFIED) {
      EXPECT_EQ(DTypeToProto(*t), value) << d->value(i)->name();
    }
  }
  EXPECT_EQ(*DTypeFromProto(v1::DTYPE_UNSPECIFIED, kernels::DType::kF16, "x"),
            kernels::DType::kF16);
  EXPECT_EQ(DTypeToProto(kernels::DType::kQ4_1), v1::DTYPE_UNSPECIFIED);
  absl::StatusOr<kernels::DType> bad = DTypeFromProto(17, kernels::DType::kF32, "hidden.dtype");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("hidden.dtype = 17"));
}

}  // namespace
}  // namespace tessera
