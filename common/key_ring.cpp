// The key directory and the sealing of classified values (libsodium AEAD).
#include "common/key_ring.hpp"

#include "common/clock.hpp"
#include "common/errc.hpp"
#include "common/private_file.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pingan {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view prefix = "sealed:1:";

// "2026-11" (a month) or "2026-11.N" with N >= 2: the only names a key may have,
// so a key id is never a path.
bool month_like(std::string_view s) {
    if (s.size() != 7 || s[4] != '-') return false;
    for (std::size_t i : {0, 1, 2, 3, 5, 6})
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

// The rotation number of `id` (1 for the month's first key), 0 if `id` is not a key id.
unsigned rotation(std::string_view id) {
    if (id.size() < 7 || !month_like(id.substr(0, 7))) return 0;
    if (id.size() == 7) return 1;
    if (id[7] != '.' || id.size() == 8 || id.size() > 13) return 0;
    unsigned n = 0;
    for (char c : id.substr(8)) {
        if (c < '0' || c > '9') return 0;
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    return n >= 2 ? n : 0;
}

std::string id_of(std::string_view period, unsigned n) {
    return n == 1 ? std::string(period) : std::string(period) + "." + std::to_string(n);
}

std::int64_t mtime_ns(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return -2;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

std::string associated_data(const event& e, std::string_view field) {
    std::string ad(reinterpret_cast<const char*>(e.id.bytes.data()), e.id.bytes.size());
    ad.append(field);
    return ad;
}

// Applies `f` to every string of a classified field's value.
template <class T, class F> void each_string(T& v, F& f) {
    if constexpr (std::is_same_v<T, std::string>) {
        f(v);
    } else if constexpr (is_optional<T>::value) {
        if (v) each_string(*v, f);
    } else if constexpr (is_vector<T>::value) {
        for (auto& x : v)
            each_string(x, f);
    }
}

// Calls `f(field name, string)` for every string of every classified field of `e`.
template <class F> void each_classified(event& e, F&& f) {
    std::visit(
        [&](auto& body) {
            body.fields([&](std::string_view name, auto& v, const field_opts& o) {
                if (!o.classified) return;
                auto g = [&](std::string& s) { f(name, s); };
                each_string(v, g);
            });
        },
        e.body);
}

} // namespace

bool is_sealed(std::string_view v) noexcept {
    return v.substr(0, prefix.size()) == prefix;
}

std::string key_period(timestamp t) {
    auto ymd = std::chrono::year_month_day(std::chrono::floor<std::chrono::days>(t));
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()));
    return buf;
}

key_ring::key_ring(fs::path dir) : dir_(std::move(dir)) {
    if (sodium_init() < 0) throw error(errc::internal, "libsodium failed to initialise");
    std::error_code ec;
    if (!fs::exists(dir_, ec)) {
        fs::create_directories(dir_, ec);
        if (ec) throw error(errc::bad_config, "cannot make the key directory " + dir_.string());
        fs::permissions(dir_, fs::perms::owner_all, ec);
    }
    if (!fs::is_directory(dir_, ec))
        throw error(errc::bad_config, "the key directory " + dir_.string() + " is not a directory");
    std::lock_guard l(m_);
    reload();
}

key_ring::~key_ring() {
    for (auto& [id, k] : keys_)
        sodium_memzero(k.data(), k.size());
}

void key_ring::reload() {
    for (auto& [id, k] : keys_)
        sodium_memzero(k.data(), k.size());
    keys_.clear();
    shredded_.clear();
    seen_mtime_ = mtime_ns(dir_);
    loaded_at_ = std::chrono::steady_clock::now();
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
        auto name = entry.path().filename().string();
        auto dot = name.rfind('.');
        if (dot == std::string::npos) continue;
        auto id = name.substr(0, dot);
        auto ext = std::string_view(name).substr(dot);
        if (!rotation(id)) continue;
        if (ext == ".shredded") {
            shredded_[id] = true;
            continue;
        }
        if (ext != ".key") continue;
        std::ifstream in(entry.path());
        std::string text;
        in >> text;
        key k{};
        std::size_t len = 0;
        if (text.size() != 64 ||
            sodium_hex2bin(k.data(), k.size(), text.data(), text.size(), nullptr, &len, nullptr) !=
                0 ||
            len != k.size())
            continue; // half-written or foreign: never a key
        keys_[id] = k;
        sodium_memzero(text.data(), text.size());
    }
}

void key_ring::reload_if_changed() {
    // The folder's time says that a key was made or shredded; a second's age
    // covers a change within the file system's time granularity.
    auto now = std::chrono::steady_clock::now();
    if (mtime_ns(dir_) != seen_mtime_ || now - loaded_at_ > std::chrono::seconds(1)) reload();
}

const key_ring::key* key_ring::find(std::string_view id) const {
    auto it = keys_.find(id);
    return it == keys_.end() ? nullptr : &it->second;
}

std::string key_ring::make_key(std::string_view period) {
    unsigned n = 0;
    auto bump = [&](const std::string& id) {
        if (id.compare(0, 7, period) == 0) n = std::max(n, rotation(id));
    };
    for (const auto& [id, k] : keys_)
        bump(id);
    for (const auto& [id, s] : shredded_)
        bump(id);
    auto id = id_of(period, n + 1);
    key k;
    randombytes_buf(k.data(), k.size());
    std::string text(65, '\0');
    sodium_bin2hex(text.data(), text.size(), k.data(), k.size());
    text.back() = '\n';
    write_private_file((dir_ / (id + ".key")).string(), text);
    sodium_memzero(text.data(), text.size());
    keys_[id] = k;
    sodium_memzero(k.data(), k.size());
    seen_mtime_ = mtime_ns(dir_);
    return id;
}

bool key_ring::seal(event& e, timestamp now) {
    std::lock_guard l(m_);
    reload_if_changed();
    auto period = key_period(now);
    // The current key: the period's latest rotation.
    std::string id;
    unsigned best = 0;
    for (const auto& [kid, k] : keys_)
        if (kid.compare(0, 7, period) == 0 && rotation(kid) > best) {
            best = rotation(kid);
            id = kid;
        }
    bool any = false;
    each_classified(e, [&](std::string_view field, std::string& v) {
        if (v.empty() || is_sealed(v)) return;
        if (id.empty()) id = make_key(period);
        const key& k = *find(id);
        auto ad = associated_data(e, field);
        std::string box(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + v.size() +
                            crypto_aead_xchacha20poly1305_ietf_ABYTES,
                        '\0');
        auto* nonce = reinterpret_cast<unsigned char*>(box.data());
        randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
        unsigned long long clen = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt(
            nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
            reinterpret_cast<const unsigned char*>(v.data()), v.size(),
            reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, nonce, k.data());
        std::string b64(
            sodium_base64_ENCODED_LEN(box.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
        sodium_bin2base64(b64.data(), b64.size(), nonce, box.size(),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        b64.resize(std::strlen(b64.c_str()));
        sodium_memzero(v.data(), v.size());
        v = std::string(prefix) + id + ":" + b64;
        any = true;
    });
    return any;
}

bool key_ring::open(event& e) {
    std::lock_guard l(m_);
    reload_if_changed();
    bool any = false;
    each_classified(e, [&](std::string_view field, std::string& v) {
        if (!is_sealed(v)) return;
        any = true;
        auto rest = std::string_view(v).substr(prefix.size());
        auto colon = rest.find(':');
        const key* k = colon == std::string_view::npos ? nullptr : find(rest.substr(0, colon));
        if (!k) {
            v = std::string(shredded);
            return;
        }
        auto b64 = rest.substr(colon + 1);
        std::string box(b64.size(), '\0');
        std::size_t len = 0;
        constexpr auto nb = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
        constexpr auto ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
        if (sodium_base642bin(reinterpret_cast<unsigned char*>(box.data()), box.size(), b64.data(),
                              b64.size(), nullptr, &len, nullptr,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            len < nb + ab) {
            v = std::string(unreadable);
            return;
        }
        auto* nonce = reinterpret_cast<const unsigned char*>(box.data());
        auto ad = associated_data(e, field);
        std::string plain(len - nb - ab, '\0');
        unsigned long long plen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr, nonce + nb,
                len - nb, reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nonce,
                k->data()) != 0) {
            v = std::string(unreadable);
            return;
        }
        plain.resize(plen);
        v = std::move(plain);
    });
    return any;
}

std::string key_ring::rotate(timestamp now) {
    std::lock_guard l(m_);
    reload();
    return make_key(key_period(now));
}

std::vector<std::string> key_ring::shred(std::string_view period) {
    if (!rotation(period))
        throw error(errc::bad_value,
                    "not a key period (YYYY-MM) or key id (YYYY-MM.N): " + std::string(period));
    std::lock_guard l(m_);
    reload();
    std::vector<std::string> gone;
    for (const auto& [id, k] : keys_) {
        bool match = id == period || (period.size() == 7 && id.compare(0, 7, period) == 0);
        if (!match) continue;
        auto path = dir_ / (id + ".key");
        auto fail = [&](const std::string& what) {
            throw error(errc::io_error, what + " " + path.string() + ": " + std::strerror(errno));
        };
        // Overwrite before unlinking, so the key's bytes do not linger in the
        // file's blocks (a copy-on-write or journalling file system may still
        // keep old blocks: docs/security.md).
        int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open");
        struct stat st {};
        ::fstat(fd, &st);
        std::string zeros(static_cast<std::size_t>(std::max<off_t>(st.st_size, 65)), '\0');
        bool ok =
            ::pwrite(fd, zeros.data(), zeros.size(), 0) == static_cast<ssize_t>(zeros.size()) &&
            ::fsync(fd) == 0;
        int keep = errno;
        ::close(fd);
        errno = keep;
        if (!ok) fail("cannot overwrite");
        if (::unlink(path.c_str()) != 0) fail("cannot remove");
        write_private_file((dir_ / (id + ".shredded")).string(),
                           "shredded at " + format_utc(system_clock().now()) + "\n");
        gone.push_back(id);
    }
    reload();
    return gone;
}

std::vector<key_info> key_ring::list() {
    std::lock_guard l(m_);
    reload();
    std::map<std::string, bool> all;
    for (const auto& [id, k] : keys_)
        all[id] = false;
    for (const auto& [id, s] : shredded_)
        all[id] = true;
    std::vector<key_info> out;
    for (auto& [id, s] : all)
        out.push_back({id, s});
    return out;
}

} // namespace pingan
