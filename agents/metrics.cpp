#include "agents/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <type_traits>

namespace swarmfs {

namespace {

bool name_char(char c, bool first, bool colon) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
    if (colon && c == ':') return true;
    return !first && c >= '0' && c <= '9';
}

bool valid_name(std::string_view name, bool colon) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, colon)) return false;
    return true;
}

// Prometheus reads Go's float syntax; the shortest round-trip form is valid
// there ("1", "0.25", "1e+21"), and the infinities and NaN have fixed names.
void append_number(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        char buf[32];
        auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
        out.append(buf, end);
    }
}

void append_label_value(std::string& out, std::string_view v) {
    for (char c : v) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
}

// HELP text escapes only backslash and newline (quotes are fine there).
void append_help(std::string& out, std::string_view v) {
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

// {a="x",b="y"} plus an optional le, or nothing for a series without labels.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, const std::string* le = nullptr) {
    if (names.empty() && !le) return;
    out += '{';
    for (size_t i = 0; i < names.size(); ++i) {
        if (i) out += ',';
        out += names[i];
        out += "=\"";
        append_label_value(out, values[i]);
        out += '"';
    }
    if (le) {
        if (!names.empty()) out += ',';
        out += "le=\"";
        out += *le;
        out += '"';
    }
    out += '}';
}

void append_sample(std::string& out, std::string_view name, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, double v,
                   const std::string* le = nullptr) {
    out += name;
    append_labels(out, names, values, le);
    out += ' ';
    append_number(out, v);
    out += '\n';
}

}  // namespace

bool valid_metric_name(std::string_view name) { return valid_name(name, true); }

bool valid_label_name(std::string_view name) {
    return valid_name(name, false) && name.substr(0, 2) != "__";
}

std::vector<double> default_latency_buckets() {
    // Model turns take seconds to minutes; tool calls and queue waits less.
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
}

void Counter::inc(double by) {
    if (!(by > 0)) return;  // also catches NaN
    v_.fetch_add(by, std::memory_order_relaxed);
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(bounds ? std::move(bounds) : std::make_shared<const std::vector<double>>()),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_->size() + 1)) {}

void Histogram::observe(double v) {
    if (std::isnan(v)) return;
    // le is inclusive: v goes in the first bucket whose bound is >= v.
    size_t i = std::lower_bound(bounds_->begin(), bounds_->end(), v) - bounds_->begin();
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.cumulative.reserve(bounds_->size() + 1);
    // The count is the sum of the buckets read here, not a separate atomic,
    // so _count always equals the +Inf bucket even under concurrent updates.
    for (size_t i = 0; i <= bounds_->size(); ++i) {
        s.count += counts_[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(s.count);
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

template <class M>
Family<M>::Family(std::string name, std::string help, std::vector<std::string> labels,
                  std::shared_ptr<const std::vector<double>> bounds)
    : MetricFamily(std::move(name), std::move(help), std::move(labels)),
      bounds_(std::move(bounds)) {
    // A family without labels shows its one series from the start (as 0),
    // so a scrape sees it before anything happened.
    if (label_names().empty()) series_.emplace(std::vector<std::string>{}, make_series());
}

template <class M>
std::shared_ptr<M> Family<M>::make_series() const {
    if constexpr (std::is_same_v<M, Histogram>)
        return std::make_shared<Histogram>(bounds_);
    else
        return std::make_shared<M>();
}

template <class M>
Result<std::shared_ptr<M>> Family<M>::with(const std::vector<std::string>& label_values) {
    if (label_values.size() != label_names().size())
        return make_error(EINVAL, "metric " + name() + " takes " +
                                      std::to_string(label_names().size()) + " label values, not " +
                                      std::to_string(label_values.size()));
    std::lock_guard lk(mu_);
    auto it = series_.find(label_values);
    if (it == series_.end()) it = series_.emplace(label_values, make_series()).first;
    return it->second;
}

template <class M>
bool Family<M>::remove(const std::vector<std::string>& label_values) {
    std::lock_guard lk(mu_);
    return series_.erase(label_values) > 0;
}

template <class M>
const std::vector<double>& Family<M>::buckets() const {
    static const std::vector<double> none;
    return bounds_ ? *bounds_ : none;
}

template <class M>
std::string_view Family<M>::type() const {
    if constexpr (std::is_same_v<M, Counter>)
        return "counter";
    else if constexpr (std::is_same_v<M, Gauge>)
        return "gauge";
    else
        return "histogram";
}

template <class M>
void Family<M>::render_samples(std::string& out) const {
    std::lock_guard lk(mu_);
    for (const auto& [values, series] : series_) {
        if constexpr (std::is_same_v<M, Histogram>) {
            auto snap = series->snapshot();
            std::string le;
            const auto& bounds = series->bounds();
            for (size_t i = 0; i < bounds.size(); ++i) {
                le.clear();
                append_number(le, bounds[i]);
                append_sample(out, name() + "_bucket", label_names(), values,
                              static_cast<double>(snap.cumulative[i]), &le);
            }
            le = "+Inf";
            append_sample(out, name() + "_bucket", label_names(), values,
                          static_cast<double>(snap.count), &le);
            append_sample(out, name() + "_sum", label_names(), values, snap.sum);
            append_sample(out, name() + "_count", label_names(), values,
                          static_cast<double>(snap.count));
        } else {
            append_sample(out, name(), label_names(), values, series->value());
        }
    }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

template <class M>
Result<Family<M>*> MetricsRegistry::add(std::string name, std::string help,
                                        std::vector<std::string> labels,
                                        std::shared_ptr<const std::vector<double>> bounds) {
    if (!valid_metric_name(name)) return make_error(EINVAL, "bad metric name: " + name);
    for (size_t i = 0; i < labels.size(); ++i) {
        if (!valid_label_name(labels[i]))
            return make_error(EINVAL, "metric " + name + ": bad label name: " + labels[i]);
        if (std::find(labels.begin(), labels.begin() + i, labels[i]) != labels.begin() + i)
            return make_error(EINVAL, "metric " + name + ": label repeated: " + labels[i]);
        if (bounds && labels[i] == "le")
            return make_error(EINVAL, "metric " + name + ": histograms reserve the label le");
    }

    std::vector<std::string> samples{name};
    if (bounds)
        for (const char* suffix : {"_bucket", "_sum", "_count"}) samples.push_back(name + suffix);

    std::lock_guard lk(mu_);
    if (auto it = families_.find(name); it != families_.end()) {
        auto* same = dynamic_cast<Family<M>*>(it->second.get());
        bool same_buckets = !bounds || (same && same->buckets() == *bounds);
        if (same && same->label_names() == labels && same_buckets) return same;
        return make_error(EEXIST, "metric " + name + " is already registered differently");
    }
    for (const auto& s : samples)
        if (auto it = sample_names_.find(s); it != sample_names_.end())
            return make_error(EEXIST, "metric " + name + ": sample name " + s +
                                          " is already used by " + it->second);

    auto family =
        std::make_unique<Family<M>>(name, std::move(help), std::move(labels), std::move(bounds));
    auto* raw = family.get();
    for (const auto& s : samples) sample_names_.emplace(s, name);
    families_.emplace(std::move(name), std::move(family));
    return raw;
}

Result<CounterFamily*> MetricsRegistry::counter(std::string name, std::string help,
                                                std::vector<std::string> label_names) {
    return add<Counter>(std::move(name), std::move(help), std::move(label_names), nullptr);
}

Result<GaugeFamily*> MetricsRegistry::gauge(std::string name, std::string help,
                                            std::vector<std::string> label_names) {
    return add<Gauge>(std::move(name), std::move(help), std::move(label_names), nullptr);
}

Result<HistogramFamily*> MetricsRegistry::histogram(std::string name, std::string help,
                                                    std::vector<std::string> label_names,
                                                    std::vector<double> buckets) {
    // A trailing +Inf is implied anyway; accept it when spelled out.
    if (!buckets.empty() && buckets.back() == INFINITY) buckets.pop_back();
    for (size_t i = 0; i < buckets.size(); ++i) {
        if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i - 1] < buckets[i])))
            return make_error(EINVAL, "metric " + name + ": buckets must be finite and increasing");
    }
    return add<Histogram>(std::move(name), std::move(help), std::move(label_names),
                          std::make_shared<const std::vector<double>>(std::move(buckets)));
}

void MetricsRegistry::add_collector(std::function<void()> fn) {
    std::lock_guard lk(mu_);
    collectors_.push_back(std::move(fn));
}

std::string MetricsRegistry::render() const {
    std::vector<std::function<void()>> collectors;
    {
        std::lock_guard lk(mu_);
        collectors = collectors_;
    }
    for (auto& fn : collectors) fn();

    std::string out;
    std::lock_guard lk(mu_);
    for (const auto& [name, family] : families_) {
        if (!family->help().empty()) {
            out += "# HELP " + name + " ";
            append_help(out, family->help());
            out += '\n';
        }
        out += "# TYPE " + name + " ";
        out += family->type();
        out += '\n';
        family->render_samples(out);
    }
    return out;
}

}  // namespace swarmfs
