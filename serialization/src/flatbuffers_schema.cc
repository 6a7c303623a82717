// FlatBuffers binary schemas from the log: verification, sanity checks on every type
// reference (the reflection API indexes without bounds checks), the field list, and the
// reflection walker that turns a verified payload into a document.
#include <flatbuffers/reflection.h>

#include <cstring>

#include "internal/codecs.h"

namespace sluice::serialization {

namespace {

using nlohmann::json;
using reflection::BaseType;

bool is_scalar(BaseType t) { return t >= reflection::Bool && t <= reflection::Double; }

size_t base_size(BaseType t) {
  switch (t) {
    case reflection::UType:
    case reflection::Bool:
    case reflection::Byte:
    case reflection::UByte: return 1;
    case reflection::Short:
    case reflection::UShort: return 2;
    case reflection::Int:
    case reflection::UInt:
    case reflection::Float: return 4;
    case reflection::Long:
    case reflection::ULong:
    case reflection::Double: return 8;
    default: return 4;  // offsets
  }
}

FieldType scalar_type(BaseType t) {
  switch (t) {
    case reflection::Bool: return FieldType::boolean;
    case reflection::Byte: return FieldType::i8;
    case reflection::UByte: return FieldType::u8;
    case reflection::Short: return FieldType::i16;
    case reflection::UShort: return FieldType::u16;
    case reflection::Int: return FieldType::i32;
    case reflection::UInt: return FieldType::u32;
    case reflection::Long: return FieldType::i64;
    case reflection::ULong: return FieldType::u64;
    case reflection::Float: return FieldType::f32;
    case reflection::Double: return FieldType::f64;
    default: return FieldType::composite;
  }
}

// Every index the reflection helpers and our walker follow must be in range.
class SchemaChecker {
 public:
  explicit SchemaChecker(const reflection::Schema& s) : s_(s) {}

  std::string check() const {
    if (s_.objects() == nullptr) return "no objects";
    const auto nobj = s_.objects()->size();
    for (flatbuffers::uoffset_t i = 0; i < nobj; ++i) {
      const reflection::Object* o = s_.objects()->Get(i);
      if (o->name() == nullptr) return "an object without a name";
      if (o->fields() == nullptr) return "object " + o->name()->str() + " without fields";
      if (o->is_struct()) {
        const int a = o->minalign();
        if (o->bytesize() <= 0 || a <= 0 || a > 16 || (a & (a - 1)) != 0)
          return "struct " + o->name()->str() + " with a bad size or alignment";
      }
      for (const reflection::Field* f : *o->fields()) {
        if (f->name() == nullptr || f->type() == nullptr)
          return "object " + o->name()->str() + ": a field without name or type";
        if (std::string e = check_field(*o, *f); !e.empty())
          return o->name()->str() + "." + f->name()->str() + ": " + e;
      }
    }
    if (s_.enums() != nullptr) {
      for (const reflection::Enum* e : *s_.enums()) {
        if (e->name() == nullptr || e->values() == nullptr || e->underlying_type() == nullptr)
          return "an enum without name or values";
        for (const reflection::EnumVal* v : *e->values()) {
          if (v->name() == nullptr) return "enum " + e->name()->str() + ": a value without a name";
          if (v->union_type() != nullptr && v->union_type()->base_type() == reflection::Obj &&
              !table_ok(v->union_type()->index()))
            return "union " + e->name()->str() + ": a member that is not a table";
        }
      }
    }
    return {};
  }

 private:
  // A table (union members must be tables).
  bool table_ok(int index) const {
    return obj_any(index) &&
           !s_.objects()->Get(static_cast<flatbuffers::uoffset_t>(index))->is_struct();
  }
  bool enum_ok(int index) const {
    return index >= 0 && s_.enums() != nullptr &&
           static_cast<flatbuffers::uoffset_t>(index) < s_.enums()->size();
  }
  bool obj_any(int index) const {
    return index >= 0 && static_cast<flatbuffers::uoffset_t>(index) < s_.objects()->size();
  }

  std::string check_one(BaseType bt, int index) const {
    if (is_scalar(bt)) return index < 0 || enum_ok(index) ? "" : "enum index out of range";
    switch (bt) {
      case reflection::String: return {};
      case reflection::Obj: return obj_any(index) ? "" : "object index out of range";
      case reflection::Union:
      case reflection::UType: return enum_ok(index) ? "" : "union index out of range";
      default: return "unsupported type";
    }
  }

  std::string check_field(const reflection::Object& o, const reflection::Field& f) const {
    const reflection::Type& t = *f.type();
    const BaseType bt = t.base_type();
    if (bt == reflection::Vector || bt == reflection::Array) {
      const BaseType el = t.element();
      if (el == reflection::Vector || el == reflection::Array || el == reflection::None)
        return "bad element type";
      if (bt == reflection::Array && (t.fixed_length() == 0 || !o.is_struct()))
        return "bad fixed-length array";
      if (std::string e = check_one(el, t.index()); !e.empty()) return e;
    } else if (std::string e = check_one(bt, t.index()); !e.empty()) {
      return e;
    }
    if (o.is_struct()) {
      size_t size = 0;
      if (is_scalar(bt)) {
        size = base_size(bt);
      } else if (bt == reflection::Obj) {
        const reflection::Object* n = s_.objects()->Get(static_cast<flatbuffers::uoffset_t>(t.index()));
        if (!n->is_struct()) return "a table inside a struct";
        size = static_cast<size_t>(n->bytesize());
      } else if (bt == reflection::Array) {
        size_t es = is_scalar(t.element()) ? base_size(t.element()) : 0;
        if (t.element() == reflection::Obj) {
          const reflection::Object* n = s_.objects()->Get(static_cast<flatbuffers::uoffset_t>(t.index()));
          if (!n->is_struct()) return "a table inside a struct";
          es = static_cast<size_t>(n->bytesize());
        }
        if (es == 0) return "bad array element";
        size = es * t.fixed_length();
      } else {
        return "a non-scalar field in a struct";
      }
      if (f.offset() + size > static_cast<size_t>(o.bytesize())) return "outside its struct";
    } else {
      if (f.offset() < 4 || (f.offset() & 1) != 0) return "bad vtable offset";
      if (bt == reflection::Array) return "an array outside a struct";
    }
    return {};
  }

  const reflection::Schema& s_;
};

std::string type_detail(const reflection::Schema& s, const reflection::Type& t) {
  auto obj_name = [&](int i) { return s.objects()->Get(static_cast<flatbuffers::uoffset_t>(i))->name()->str(); };
  auto elem = [&](BaseType b) -> std::string {
    if (is_scalar(b)) return std::string(to_string(scalar_type(b)));
    if (b == reflection::String) return "string";
    if (b == reflection::Obj) return obj_name(t.index());
    if (b == reflection::Union) return "union";
    return "?";
  };
  switch (t.base_type()) {
    case reflection::Vector: return "vector<" + elem(t.element()) + ">";
    case reflection::Obj: return obj_name(t.index());
    case reflection::Union: return "union " + s.enums()->Get(static_cast<flatbuffers::uoffset_t>(t.index()))->name()->str();
    case reflection::UType: return "union type";
    default: return elem(t.base_type());
  }
}

// ---- walker -------------------------------------------------------------------------------

json scalar_at(BaseType bt, const uint8_t* p) {
  using flatbuffers::ReadScalar;
  switch (bt) {
    case reflection::Bool: return ReadScalar<uint8_t>(p) != 0;
    case reflection::Byte: return ReadScalar<int8_t>(p);
    case reflection::UType:
    case reflection::UByte: return ReadScalar<uint8_t>(p);
    case reflection::Short: return ReadScalar<int16_t>(p);
    case reflection::UShort: return ReadScalar<uint16_t>(p);
    case reflection::Int: return ReadScalar<int32_t>(p);
    case reflection::UInt: return ReadScalar<uint32_t>(p);
    case reflection::Long: return ReadScalar<int64_t>(p);
    case reflection::ULong: return ReadScalar<uint64_t>(p);
    case reflection::Float: return ReadScalar<float>(p);
    case reflection::Double: return ReadScalar<double>(p);
    default: return nullptr;
  }
}

class Walker {
 public:
  explicit Walker(const reflection::Schema& s) : s_(s) {}

  json table(const flatbuffers::Table& t, const reflection::Object& o, int depth) const {
    json out = json::object();
    if (depth > internal::kMaxDepth) return out;
    for (const reflection::Field* f : *o.fields()) {
      if (f->deprecated()) continue;
      out[f->name()->str()] = table_field(t, o, *f, depth);
    }
    return out;
  }

 private:
  const reflection::Object& obj(int i) const {
    return *s_.objects()->Get(static_cast<flatbuffers::uoffset_t>(i));
  }

  json table_field(const flatbuffers::Table& t, const reflection::Object& o,
                   const reflection::Field& f, int depth) const {
    const reflection::Type& ty = *f.type();
    const BaseType bt = ty.base_type();
    const uint16_t off = f.offset();
    if (is_scalar(bt) || bt == reflection::UType) {
      if (!t.CheckField(off)) {
        if (f.optional()) return nullptr;
        if (bt == reflection::Float || bt == reflection::Double) return f.default_real();
        if (bt == reflection::Bool) return f.default_integer() != 0;
        if (bt == reflection::ULong) return static_cast<uint64_t>(f.default_integer());
        return f.default_integer();
      }
      return scalar_at(bt, t.GetAddressOf(off));
    }
    switch (bt) {
      case reflection::String: {
        auto* s = t.GetPointer<const flatbuffers::String*>(off);
        return s ? json(s->str()) : json(nullptr);
      }
      case reflection::Obj: {
        const reflection::Object& n = obj(ty.index());
        if (n.is_struct()) {
          const uint8_t* p = t.GetStruct<const uint8_t*>(off);
          return p ? strukt(p, n, depth + 1) : json(nullptr);
        }
        auto* sub = t.GetPointer<const flatbuffers::Table*>(off);
        return sub ? table(*sub, n, depth + 1) : json(nullptr);
      }
      case reflection::Union: {
        auto* sub = t.GetPointer<const flatbuffers::Table*>(off);
        if (sub == nullptr) return nullptr;
        // The member type is in the companion field "<name>_type".
        const std::string type_field = f.name()->str() + "_type";
        for (const reflection::Field* g : *o.fields()) {
          if (g->name()->str() != type_field) continue;
          const uint8_t tag = t.GetField<uint8_t>(g->offset(), 0);
          const reflection::Enum& e = *s_.enums()->Get(static_cast<flatbuffers::uoffset_t>(ty.index()));
          for (const reflection::EnumVal* v : *e.values()) {
            if (v->value() != tag || v->union_type() == nullptr ||
                v->union_type()->base_type() != reflection::Obj)
              continue;
            return table(*sub, obj(v->union_type()->index()), depth + 1);
          }
        }
        return nullptr;
      }
      case reflection::Vector: {
        auto* v = t.GetPointer<const flatbuffers::Vector<uint8_t>*>(off);
        return v ? vector(v->Data(), v->size(), ty, depth) : json(nullptr);
      }
      default: return nullptr;
    }
  }

  json vector(const uint8_t* data, flatbuffers::uoffset_t n, const reflection::Type& ty,
              int depth) const {
    json out = json::array();
    const BaseType el = ty.element();
    if (depth > internal::kMaxDepth) return out;
    for (flatbuffers::uoffset_t i = 0; i < n; ++i) {
      if (is_scalar(el) || el == reflection::UType) {
        out.push_back(scalar_at(el, data + i * base_size(el)));
      } else if (el == reflection::String) {
        const uint8_t* p = data + i * 4;
        auto* s = reinterpret_cast<const flatbuffers::String*>(p + flatbuffers::ReadScalar<flatbuffers::uoffset_t>(p));
        out.push_back(s->str());
      } else if (el == reflection::Obj) {
        const reflection::Object& o = obj(ty.index());
        if (o.is_struct()) {
          out.push_back(strukt(data + i * static_cast<size_t>(o.bytesize()), o, depth + 1));
        } else {
          const uint8_t* p = data + i * 4;
          auto* sub = reinterpret_cast<const flatbuffers::Table*>(p + flatbuffers::ReadScalar<flatbuffers::uoffset_t>(p));
          out.push_back(table(*sub, o, depth + 1));
        }
      } else {
        out.push_back(nullptr);  // vectors of unions: not decoded
      }
    }
    return out;
  }

  json strukt(const uint8_t* p, const reflection::Object& o, int depth) const {
    json out = json::object();
    if (depth > internal::kMaxDepth) return out;  // also stops a struct that contains itself
    for (const reflection::Field* f : *o.fields()) {
      const reflection::Type& ty = *f->type();
      const uint8_t* q = p + f->offset();
      json v;
      if (is_scalar(ty.base_type())) {
        v = scalar_at(ty.base_type(), q);
      } else if (ty.base_type() == reflection::Obj) {
        v = strukt(q, obj(ty.index()), depth + 1);
      } else if (ty.base_type() == reflection::Array) {
        v = json::array();
        const BaseType el = ty.element();
        for (uint16_t i = 0; i < ty.fixed_length(); ++i) {
          if (is_scalar(el)) {
            v.push_back(scalar_at(el, q + i * base_size(el)));
          } else {
            const reflection::Object& n = obj(ty.index());
            v.push_back(strukt(q + i * static_cast<size_t>(n.bytesize()), n, depth + 1));
          }
        }
      }
      out[f->name()->str()] = std::move(v);
    }
    return out;
  }

  const reflection::Schema& s_;
};

}  // namespace

Result<Schema> flatbuffers_schema(std::string type_name, uint16_t version,
                                  std::span<const uint8_t> bfbs, std::string table) {
  Schema s;
  s.type_name = std::move(type_name);
  s.version = version;
  s.codec = CodecId::flatbuffers;
  s.fb_table = std::move(table);
  s.fb_schema.assign(bfbs.begin(), bfbs.end());  // owned and aligned
  auto fail = [&](const std::string& what) {
    return Status(StatusCode::invalid_argument,
                  s.describe() + ": FlatBuffers schema of table " + s.fb_table + ": " + what);
  };
  flatbuffers::Verifier v(s.fb_schema.data(), s.fb_schema.size());
  if (s.fb_schema.empty() || !reflection::VerifySchemaBuffer(v))
    return fail("not a valid binary schema (.bfbs)");
  const reflection::Schema& rs = *reflection::GetSchema(s.fb_schema.data());
  if (std::string e = SchemaChecker(rs).check(); !e.empty()) return fail(e);
  const reflection::Object* root = s.fb_root();
  if (root == nullptr) return fail("no such table in the schema");
  if (root->is_struct()) return fail("a struct, not a table");
  for (const reflection::Field* f : *root->fields()) {
    if (f->deprecated()) continue;
    FieldDef d;
    d.name = f->name()->str();
    const BaseType bt = f->type()->base_type();
    d.type = scalar_type(bt);
    d.offset = f->offset();
    if (d.type == FieldType::composite && bt == reflection::String) d.type = FieldType::string;
    if (d.type == FieldType::composite) d.detail = type_detail(rs, *f->type());
    d.has_default = true;
    if (d.type == FieldType::f32 || d.type == FieldType::f64) d.default_value = f->default_real();
    else if (d.type == FieldType::boolean) d.default_value = f->default_integer() != 0;
    else if (d.type == FieldType::u64) d.default_value = static_cast<uint64_t>(f->default_integer());
    else if (d.type != FieldType::string && d.type != FieldType::composite) d.default_value = f->default_integer();
    s.fields.push_back(std::move(d));
  }
  return s;
}

namespace internal {

Result<nlohmann::json> FlatBuffersDocumentCodec::to_document(const Schema& schema,
                                                            std::span<const std::byte> payload) const {
  const reflection::Schema* rs = schema.fb_reflection();
  const reflection::Object* root = schema.fb_root();
  if (rs == nullptr || root == nullptr)
    return Status(StatusCode::invalid_argument, schema.describe() + ": no FlatBuffers schema");
  // Reflection reads scalars in place: give it an 8-aligned copy if the payload is not.
  std::vector<uint64_t> aligned;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(payload.data());
  if (reinterpret_cast<uintptr_t>(p) % 8 != 0) {
    aligned.resize((payload.size() + 7) / 8);
    std::memcpy(aligned.data(), p, payload.size());
    p = reinterpret_cast<const uint8_t*>(aligned.data());
  }
  if (payload.size() < sizeof(flatbuffers::uoffset_t) ||
      !flatbuffers::Verify(*rs, *root, p, payload.size(), static_cast<flatbuffers::uoffset_t>(kMaxDepth)))
    return Status(StatusCode::invalid_argument,
                  schema.describe() + ": invalid FlatBuffer for table " + schema.fb_table + " (" +
                      std::to_string(payload.size()) + " bytes)");
  return Walker(*rs).table(*flatbuffers::GetAnyRoot(p), *root, 0);
}

}  // namespace internal
}  // namespace sluice::serialization
