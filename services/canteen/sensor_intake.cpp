// UDP, TCP and file transports of the canteen line protocol.
#include "sensor_intake.hpp"

#include <fstream>

namespace pingan::svc::canteen {
namespace {

// One TCP connection: reads lines, commits their events, answers each line.
class line_session : public std::enable_shared_from_this<line_session> {
  public:
    // `slot` counts this connection against the listener's limit while it is open.
    line_session(tcp::socket s, sensor_intake& intake, service_host& host,
                 std::shared_ptr<void> slot)
        : socket_(std::move(s)), intake_(intake), host_(host), slot_(std::move(slot)) {}

    void run() { read(); }

  private:
    void read() {
        net::async_read_until(
            socket_, net::dynamic_buffer(in_, 1 << 16), '\n',
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) return; // closed, or a line over 64 KiB: drop the connection
        std::vector<event> events;
        std::string answers;
        std::size_t nl;
        while ((nl = in_.find('\n')) != std::string::npos) {
            auto line = std::string_view(in_).substr(0, nl);
            if (!skip_line(line)) {
                std::string id;
                if (auto p = intake_.take_line(line, events, &id))
                    answers += "error " + std::string(errc_name(p.code)) + " " + p.detail + "\n";
                else
                    answers += "ok " + id + "\n";
            }
            in_.erase(0, nl + 1);
        }
        try {
            host_.accept(events);
        } catch (const error& x) {
            answers = "error " + std::string(errc_name(x.code())) + " outbox write failed\n";
        }
        out_ = std::move(answers);
        if (out_.empty()) return read();
        net::async_write(socket_, net::buffer(out_),
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (!ec) self->read();
                         });
    }

    tcp::socket socket_;
    sensor_intake& intake_;
    service_host& host_;
    std::string in_, out_;
    std::shared_ptr<void> slot_;
};

} // namespace

problem sensor_intake::take_line(std::string_view line, std::vector<event>& out,
                                 std::string* first_id) {
    reading r;
    if (auto p = parse_line(line, r)) {
        ++refused_;
        return p;
    }
    auto d = sensors_.on_reading(r, host_.context());
    if (!d.errors.empty()) {
        ++refused_;
        return {d.errors.front().code, d.errors.front().message};
    }
    ++accepted_;
    if (first_id && !d.events.empty()) *first_id = d.events.front().id.str();
    for (auto& e : d.events) {
        if (e.type() == food_alert::type)
            host_.runtime().log().warn("cold chain: {} {}", e.school,
                                       std::get<food_alert>(e.body).description);
        out.push_back(std::move(e));
    }
    return {};
}

udp::endpoint sensor_intake::serve_udp(const udp::endpoint& at) {
    udp_ = std::make_unique<udp::socket>(host_.runtime().io(), at);
    udp_->set_option(net::socket_base::receive_buffer_size(1 << 20));
    receive();
    return udp_->local_endpoint();
}

void sensor_intake::receive() {
    udp_->async_receive_from(
        net::buffer(datagram_), sender_, [this](beast::error_code ec, std::size_t n) {
            if (ec == net::error::operation_aborted || !udp_->is_open()) return;
            if (!ec) {
                std::vector<event> events;
                std::string_view text(datagram_.data(), n);
                while (!text.empty()) {
                    auto nl = text.find('\n');
                    auto line = text.substr(0, nl);
                    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
                    if (skip_line(line)) continue;
                    if (auto p = take_line(line, events, nullptr))
                        host_.runtime().log().debug("udp line refused: {}", p.text());
                }
                queue(std::move(events));
            }
            receive();
        });
}

tcp::endpoint sensor_intake::serve_tcp(const tcp::endpoint& at, std::size_t max_connections) {
    // The services' listener: a connection cap, and a pause when out of descriptors.
    tcp_ = std::make_shared<listener>(
        host_.runtime().io(), at, max_connections, host_.runtime().logger(),
        [this](tcp::socket&& s, std::shared_ptr<void> slot) {
            std::make_shared<line_session>(std::move(s), *this, host_, std::move(slot))->run();
        });
    tcp_->run();
    return tcp_->local();
}

std::size_t sensor_intake::read_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw error(errc::io_error, path + ": cannot open");
    std::string line;
    std::vector<event> events;
    std::size_t n = 0, line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (skip_line(line)) continue;
        if (auto p = take_line(line, events, nullptr))
            host_.runtime().log().warn("{}:{}: {}", path, line_no, p.text());
        else
            ++n;
        if (events.size() >= 1000) {
            host_.accept(events);
            events.clear();
        }
    }
    host_.accept(events);
    return n;
}

// Gathers the events of many datagrams into one outbox transaction: a burst
// from a hundred sensors costs one fsync, not a hundred.
void sensor_intake::queue(std::vector<event>&& events) {
    for (auto& e : events)
        pending_.push_back(std::move(e));
    if (pending_.size() >= 2000) return flush();
    if (!flush_posted_ && !pending_.empty()) {
        flush_posted_ = true;
        net::post(host_.runtime().io(), [this] { flush(); });
    }
}

void sensor_intake::flush() {
    flush_posted_ = false;
    if (pending_.empty()) return;
    try {
        host_.accept(pending_);
    } catch (const error& x) {
        host_.runtime().log().error("outbox: {}; {} readings lost", x.what(), pending_.size());
    }
    pending_.clear();
}

void sensor_intake::stop() {
    flush();
    beast::error_code ec;
    if (udp_) udp_->close(ec);
    if (tcp_) tcp_->stop();
}

} // namespace pingan::svc::canteen
