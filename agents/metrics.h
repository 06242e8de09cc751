#pragma once
// Metrics for `MNT/metrics`, in the Prometheus text exposition format 0.0.4:
// counters, gauges and fixed-bucket histograms, each a family of series told
// apart by label values. Thread-safe throughout.
//
// The hot path is an atomic add on a series the caller holds a handle to
// (std::shared_ptr): look the series up once, when an agent is made, then
// update it with no lock and no map lookup. Handles stay valid even after the
// series is removed from its family (an archived agent); updates through
// them are then simply not shown.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vault/result.h"

namespace swarmfs {

// Only goes up. A negative or NaN increment is ignored rather than letting a
// counter go backwards, which would read as a reset to Prometheus.
class Counter {
  public:
    void inc(double by = 1.0);
    double value() const { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> v_{0.0};
};

class Gauge {
  public:
    void set(double v) { v_.store(v, std::memory_order_relaxed); }
    void inc(double by = 1.0) { v_.fetch_add(by, std::memory_order_relaxed); }
    void dec(double by = 1.0) { v_.fetch_sub(by, std::memory_order_relaxed); }
    double value() const { return v_.load(std::memory_order_relaxed); }

  private:
    std::atomic<double> v_{0.0};
};

// Observations counted into fixed buckets: `bounds` are the upper bounds
// (le), strictly increasing, with +Inf implied after the last.
class Histogram {
  public:
    explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
    // NaN is ignored: it would poison the sum for good.
    void observe(double v);

    struct Snapshot {
        std::vector<uint64_t> cumulative;  // one per bound, then +Inf
        double sum = 0;
        uint64_t count = 0;  // always equals cumulative.back()
    };
    Snapshot snapshot() const;
    const std::vector<double>& bounds() const { return *bounds_; }

  private:
    std::shared_ptr<const std::vector<double>> bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
    std::atomic<double> sum_{0.0};
};

// What the registry keeps and renders; see Family for the typed interface.
class MetricFamily {
  public:
    virtual ~MetricFamily() = default;
    const std::string& name() const { return name_; }
    const std::string& help() const { return help_; }
    const std::vector<std::string>& label_names() const { return label_names_; }
    // "counter", "gauge" or "histogram", as in the # TYPE line.
    virtual std::string_view type() const = 0;
    // Appends this family's samples (not the # HELP / # TYPE lines).
    virtual void render_samples(std::string& out) const = 0;

  protected:
    MetricFamily(std::string name, std::string help, std::vector<std::string> label_names)
        : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

  private:
    std::string name_;
    std::string help_;
    std::vector<std::string> label_names_;
};

template <class M>
class Family final : public MetricFamily {
  public:
    // The series for these label values, one per label name in order; made on
    // first use. EINVAL if the number of values is wrong. A family without
    // labels has one series: with({}).
    Result<std::shared_ptr<M>> with(const std::vector<std::string>& label_values);
    // Stops showing a series. False if there was none.
    bool remove(const std::vector<std::string>& label_values);
    // A histogram's upper bounds (without +Inf); empty for other kinds.
    const std::vector<double>& buckets() const;

    std::string_view type() const override;
    void render_samples(std::string& out) const override;

    // Use MetricsRegistry to make one.
    Family(std::string name, std::string help, std::vector<std::string> labels,
           std::shared_ptr<const std::vector<double>> bounds);

  private:
    std::shared_ptr<M> make_series() const;

    std::shared_ptr<const std::vector<double>> bounds_;  // histograms only
    mutable std::mutex mu_;
    // Ordered by label values, so the text is in a stable order.
    std::map<std::vector<std::string>, std::shared_ptr<M>> series_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Bucket bounds in seconds for things from a tool call to a long model turn.
std::vector<double> default_latency_buckets();

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus).
bool valid_label_name(std::string_view name);

class MetricsRegistry {
  public:
    MetricsRegistry() = default;
    MetricsRegistry(const MetricsRegistry&) = delete;
    MetricsRegistry& operator=(const MetricsRegistry&) = delete;

    // Registers a family, or returns the one already registered under that
    // name if it has the same type, labels (and buckets). The pointer lives as
    // long as the registry. EINVAL for a bad name, label name or buckets;
    // EEXIST for a name already used differently (including a histogram's
    // NAME_bucket, NAME_sum and NAME_count sample names).
    Result<CounterFamily*> counter(std::string name, std::string help,
                                   std::vector<std::string> label_names = {});
    Result<GaugeFamily*> gauge(std::string name, std::string help,
                               std::vector<std::string> label_names = {});
    Result<HistogramFamily*> histogram(std::string name, std::string help,
                                       std::vector<std::string> label_names = {},
                                       std::vector<double> buckets = default_latency_buckets());

    // Runs before every render, without the registry's lock held, so values
    // that are cheaper to read than to track (queue depths, agents by state)
    // can be set on gauges just in time.
    void add_collector(std::function<void()> fn);

    // The whole exposition: families by name, series by label values.
    std::string render() const;

  private:
    template <class M>
    Result<Family<M>*> add(std::string name, std::string help, std::vector<std::string> labels,
                           std::shared_ptr<const std::vector<double>> bounds);

    mutable std::mutex mu_;
    std::map<std::string, std::unique_ptr<MetricFamily>> families_;
    // Every sample name in use, so two families never emit the same one.
    std::map<std::string, std::string> sample_names_;
    std::vector<std::function<void()>> collectors_;
};

}  // namespace swarmfs
