// The photo store, in a small local LMDB.
#include "photos.hpp"

#include "common/hex.hpp"

#include <algorithm>
#include <filesystem>

namespace pingan::svc {

std::string photo_hash(std::string_view bytes) {
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(bytes.data()),
                       bytes.size(), nullptr, 0);
    return to_hex(h, sizeof h);
}

bool valid_photo_hash(std::string_view s) noexcept {
    return s.size() == 2 * crypto_generichash_BYTES && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::vector<photo_ref> photo_refs_of(const event& e) {
    return std::visit(
        [](const auto& b) -> std::vector<photo_ref> {
            if constexpr (requires { b.photo_refs; })
                return b.photo_refs;
            else
                return {};
        },
        e.body);
}

std::string_view photo_extension(std::string_view type) noexcept {
    if (type == "image/jpeg") return "jpg";
    if (type == "image/png") return "png";
    return "bin";
}

namespace {

lmdb::env open_photos(const std::string& dir, bool read_only, MDB_dbi& blobs, MDB_dbi& meta) {
    if (!read_only)
        return lmdb::open_local(dir, "photos", 64u << 20, {{"blobs", &blobs}, {"meta", &meta}});
    if (!std::filesystem::exists(dir + "/data.mdb"))
        throw error(errc::io_error, "photo store " + dir + ": no data.mdb there");
    try {
        lmdb::env e(dir, 4, 64u << 20, MDB_RDONLY);
        lmdb::txn t(e, MDB_RDONLY);
        blobs = lmdb::open_dbi(t, "blobs", 0);
        meta = lmdb::open_dbi(t, "meta", 0);
        t.commit();
        return e;
    } catch (const lmdb::lmdb_error& x) {
        throw error(errc::io_error, "photo store " + dir + ": " + x.what());
    }
}

} // namespace

photo_store::photo_store(const std::string& dir, bool read_only)
    : env_(open_photos(dir, read_only, blobs_, meta_)) {
    if (sodium_init() < 0) throw error(errc::internal, "libsodium could not start");
}

photo_store::stored photo_store::put(std::string_view bytes, std::string_view type,
                                     const std::string& school, const std::string& by,
                                     timestamp at) {
    stored s{photo_hash(bytes), bytes.size(), std::string(type), false};
    lmdb::write_growing(env_, "photos", [&](const lmdb::txn& t) {
        nlohmann::json m;
        if (auto v = lmdb::get(t, meta_, s.hash)) {
            m = nlohmann::json::parse(*v, nullptr, false);
            s.fresh = false;
        }
        if (!m.is_object()) {
            m = {{"type", s.type},
                 {"size", s.size},
                 {"schools", nlohmann::json::array()},
                 {"uploaded_by", by},
                 {"uploaded_at", format_utc(at)}};
            lmdb::put(t, blobs_, s.hash, bytes);
            s.fresh = true;
        }
        auto& schools = m["schools"];
        if (std::find(schools.begin(), schools.end(), school) == schools.end()) {
            schools.push_back(school);
            lmdb::put(t, meta_, s.hash, m.dump());
        } else if (s.fresh) {
            lmdb::put(t, meta_, s.hash, m.dump());
        }
    });
    return s;
}

std::optional<photo_store::photo> photo_store::get(std::string_view hash, bool with_bytes) const {
    lmdb::txn t(env_, MDB_RDONLY);
    auto m = lmdb::get(t, meta_, hash);
    auto b = lmdb::get(t, blobs_, hash);
    if (!m || !b) return std::nullopt;
    auto j = nlohmann::json::parse(*m, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    photo p{with_bytes ? std::string(*b) : std::string(),
            b->size(),
            j.value("type", "application/octet-stream"),
            {}};
    for (const auto& s : j.value("schools", nlohmann::json::array()))
        if (s.is_string()) p.schools.push_back(s.get<std::string>());
    return p;
}

std::uint64_t photo_store::count() const {
    lmdb::txn t(env_, MDB_RDONLY);
    return lmdb::stat(t, meta_).ms_entries;
}

} // namespace pingan::svc
