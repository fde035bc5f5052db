#include "common/config_loader.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "google/protobuf/descriptor.h"
#include "yaml-cpp/yaml.h"

namespace imbridge {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Walks one YAML document onto a message; remembers the source for errors.
class YamlToProto {
 public:
  explicit YamlToProto(absl::string_view source) : source_(source) {}

  absl::Status Message(const YAML::Node& node, const std::string& path,
                       google::protobuf::Message* message) {
    if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
    if (!node.IsMap()) {
      return Error(path, node, "expected a mapping of fields");
    }
    const Descriptor* descriptor = message->GetDescriptor();
    for (const auto& entry : node) {
      std::string key = entry.first.as<std::string>();
      std::string field_path =
          path.empty() ? key : absl::StrCat(path, ".", key);
      const FieldDescriptor* field = descriptor->FindFieldByName(key);
      if (field == nullptr) field = descriptor->FindFieldByCamelcaseName(key);
      if (field == nullptr) {
        std::vector<std::string> known;
        for (int i = 0; i < descriptor->field_count(); ++i) {
          known.push_back(descriptor->field(i)->name());
        }
        return Error(field_path, entry.first,
                     absl::StrCat("unknown field (known fields: ",
                                  absl::StrJoin(known, ", "), ")"));
      }
      IMB_RETURN_IF_ERROR(Field(entry.second, field_path, field, message));
    }
    return ReadSecretFiles(path, message);
  }

 private:
  absl::Status Field(const YAML::Node& node, const std::string& path,
                     const FieldDescriptor* field,
                     google::protobuf::Message* message) {
    if (node.IsNull()) return absl::OkStatus();
    if (field->is_repeated()) {
      if (!node.IsSequence()) return Error(path, node, "expected a list");
      for (size_t i = 0; i < node.size(); ++i) {
        IMB_RETURN_IF_ERROR(
            Value(node[i], absl::StrCat(path, "[", i, "]"), field, message));
      }
      return absl::OkStatus();
    }
    return Value(node, path, field, message);
  }

  // Sets (or, for repeated fields, appends) one value.
  absl::Status Value(const YAML::Node& node, const std::string& path,
                     const FieldDescriptor* field,
                     google::protobuf::Message* message) {
    const Reflection* r = message->GetReflection();
    const bool rep = field->is_repeated();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      google::protobuf::Message* sub = rep ? r->AddMessage(message, field)
                                           : r->MutableMessage(message, field);
      return Message(node, path, sub);
    }
    if (!node.IsScalar()) return Error(path, node, "expected a single value");
    std::string text;
    IMB_RETURN_IF_ERROR(ExpandEnv(node.Scalar(), path, node, &text));
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        rep ? r->AddString(message, field, text)
            : r->SetString(message, field, text);
        return absl::OkStatus();
      case FieldDescriptor::CPPTYPE_BOOL: {
        std::string lower = absl::AsciiStrToLower(text);
        bool value;
        if (lower == "true" || lower == "yes" || lower == "on") {
          value = true;
        } else if (lower == "false" || lower == "no" || lower == "off") {
          value = false;
        } else {
          return Error(path, node,
                       absl::StrCat("'", text, "' is not true or false"));
        }
        rep ? r->AddBool(message, field, value)
            : r->SetBool(message, field, value);
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t value;
        if (!absl::SimpleAtoi(text, &value) ||
            (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32 &&
             (value < INT32_MIN || value > INT32_MAX))) {
          return Error(path, node,
                       absl::StrCat("'", text, "' is not an integer"));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT32) {
          rep ? r->AddInt32(message, field, static_cast<int32_t>(value))
              : r->SetInt32(message, field, static_cast<int32_t>(value));
        } else {
          rep ? r->AddInt64(message, field, value)
              : r->SetInt64(message, field, value);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t value;
        if (absl::StartsWith(text, "-") || !absl::SimpleAtoi(text, &value) ||
            (field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32 &&
             value > UINT32_MAX)) {
          return Error(
              path, node,
              absl::StrCat("'", text, "' is not a non-negative integer",
                           field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32
                               ? " below 2^32"
                               : ""));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_UINT32) {
          rep ? r->AddUInt32(message, field, static_cast<uint32_t>(value))
              : r->SetUInt32(message, field, static_cast<uint32_t>(value));
        } else {
          rep ? r->AddUInt64(message, field, value)
              : r->SetUInt64(message, field, value);
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double value;
        if (!absl::SimpleAtod(text, &value)) {
          return Error(path, node,
                       absl::StrCat("'", text, "' is not a number"));
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          rep ? r->AddDouble(message, field, value)
              : r->SetDouble(message, field, value);
        } else {
          rep ? r->AddFloat(message, field, static_cast<float>(value))
              : r->SetFloat(message, field, static_cast<float>(value));
        }
        return absl::OkStatus();
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        const EnumDescriptor* type = field->enum_type();
        const EnumValueDescriptor* value = nullptr;
        std::vector<std::string> names;
        for (int i = 0; i < type->value_count(); ++i) {
          const EnumValueDescriptor* v = type->value(i);
          if (absl::EndsWith(v->name(), "_UNSPECIFIED")) continue;
          names.push_back(absl::AsciiStrToLower(v->name()));
          if (absl::EqualsIgnoreCase(v->name(), text)) value = v;
        }
        if (value == nullptr) {
          return Error(
              path, node,
              absl::StrCat("unknown value '", text, "' (expected one of ",
                           absl::StrJoin(names, ", "), ")"));
        }
        rep ? r->AddEnum(message, field, value)
            : r->SetEnum(message, field, value);
        return absl::OkStatus();
      }
      default:
        return Error(path, node, "unsupported field type");
    }
  }

  // Replaces each ${NAME} with the environment variable NAME.
  absl::Status ExpandEnv(const std::string& in, const std::string& path,
                         const YAML::Node& node, std::string* out) {
    out->clear();
    size_t pos = 0;
    while (true) {
      size_t start = in.find("${", pos);
      if (start == std::string::npos) {
        out->append(in, pos, std::string::npos);
        return absl::OkStatus();
      }
      size_t end = in.find('}', start);
      if (end == std::string::npos) {
        return Error(path, node, "unterminated ${ in value");
      }
      out->append(in, pos, start - pos);
      std::string name = in.substr(start + 2, end - start - 2);
      const char* value = std::getenv(name.c_str());
      if (value == nullptr) {
        return Error(
            path, node,
            absl::StrCat("environment variable ", name, " is not set"));
      }
      out->append(value);
      pos = end + 1;
    }
  }

  // For each set string field `x_file` with a sibling string field `x`, reads
  // the file into `x`.
  absl::Status ReadSecretFiles(const std::string& path,
                               google::protobuf::Message* message) {
    const Descriptor* d = message->GetDescriptor();
    const Reflection* r = message->GetReflection();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* file_field = d->field(i);
      if (file_field->is_repeated() ||
          file_field->cpp_type() != FieldDescriptor::CPPTYPE_STRING ||
          !absl::EndsWith(file_field->name(), "_file")) {
        continue;
      }
      const FieldDescriptor* secret = d->FindFieldByName(
          std::string(absl::StripSuffix(file_field->name(), "_file")));
      if (secret == nullptr || secret->is_repeated() ||
          secret->cpp_type() != FieldDescriptor::CPPTYPE_STRING) {
        continue;
      }
      std::string file = r->GetString(*message, file_field);
      if (file.empty()) continue;
      std::string fpath = path.empty()
                              ? file_field->name()
                              : absl::StrCat(path, ".", file_field->name());
      if (!r->GetString(*message, secret).empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(source_, ": ", fpath, ": set either ", secret->name(),
                         " or ", file_field->name(), ", not both"));
      }
      std::ifstream in(file, std::ios::binary);
      if (!in) {
        return absl::InvalidArgumentError(
            absl::StrCat(source_, ": ", fpath, ": cannot read '", file,
                         "': ", std::strerror(errno)));
      }
      std::stringstream buffer;
      buffer << in.rdbuf();
      std::string value = buffer.str();
      while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
        value.pop_back();
      }
      r->SetString(message, secret, value);
    }
    return absl::OkStatus();
  }

  absl::Status Error(const std::string& path, const YAML::Node& node,
                     absl::string_view reason) {
    std::string where = source_;
    if (node.Mark().line >= 0) {
      absl::StrAppend(&where, ":", node.Mark().line + 1);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", path.empty() ? "(top level)" : path, ": ", reason));
  }

  std::string source_;
};

}  // namespace

absl::Status LoadConfigYaml(absl::string_view yaml, absl::string_view source,
                            google::protobuf::Message* message) {
  message->Clear();
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  YamlToProto walker(source);
  try {
    return walker.Message(root, "", message);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
}

absl::Status LoadConfigFile(const std::string& path,
                            google::protobuf::Message* message) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": cannot read config file: ", std::strerror(errno)));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return LoadConfigYaml(buffer.str(), path, message);
}

absl::Status ConfigError(absl::string_view source, absl::string_view field_path,
                         absl::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": ", field_path, ": ", reason));
}

}  // namespace imbridge
