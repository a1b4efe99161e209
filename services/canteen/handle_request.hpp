// pingan-canteen's decisions (DOMAIN §2), free of I/O:
//
// - a sensor reading → food.temp_reading, plus food.alert (kind cold_chain)
//   when the sensor's excursion crosses alert_after or escalate_after;
// - POST /canteen/sample    → food.sample (留样)
// - POST /canteen/accompany → food.accompany_meal (陪餐)
// - POST /canteen/illness   → food.alert kind illness (cases after a meal,
//   supplier, lot).
#pragma once

#include "cold_chain.hpp"
#include "line_protocol.hpp"
#include "services/common/intake.hpp"

#include <map>

namespace pingan::svc::canteen {

// Sample retention minimum, per dish and meal (GB 31654-2021).
inline constexpr double min_sample_grams = 125;

// The sensors a canteen service has heard from, each with its excursion state.
class sensors {
  public:
    explicit sensors(cold_chain_options o = {}) : opts_(o) {}

    decision on_reading(const reading& r, const intake_context& ctx);
    std::size_t count() const noexcept { return states_.size(); }
    std::size_t in_excursion() const;

  private:
    cold_chain_options opts_;
    std::map<std::string, sensor_state, std::less<>> states_;
};

decision sample(json& req, const intake_context& ctx);
decision accompany(json& req, const intake_context& ctx);
decision illness(json& req, const intake_context& ctx);

} // namespace pingan::svc::canteen
