// loop.stats() and what feeds it: callbacks counted, timed and watched
// (run_observed), set_stats, and the snapshot the Python side builds
// cxxloop.LoopStats from.
#include "loop_stats.hpp"

#include <cstring>

#include "handle.hpp"
#include "loop.hpp"
#include "loop_watch.hpp"
#include "methods.hpp"
#include "transport.hpp"

namespace cxxloop::py {

LoopStats::~LoopStats() {
    if (!watch) return;
    watch->loop = nullptr;
    watch->running = nullptr;
    watch->next_generation();
    release_watch(watch);
}

void LoopStats::reset() noexcept {
    iterations = callbacks = timers_scheduled = timers_fired = timers_cancelled = 0;
    io_events = bytes_read = bytes_written = slow_callbacks = 0;
    lag = Histogram{};
    durations = Histogram{};
    timing_iteration = ~uint64_t(0);  // iterations restarts: the next callback starts a new chain
}

// Reported through the loop's _watch_finished(entry, seq, seconds)
// (cxxloop's Watch).
int report_slow(CoreLoop* self, PyObject* entry, uint64_t seq, int64_t started_ns, int rc) {
    LoopStats& st = self->s.stats;
    st.slow_callbacks++;
    if (rc < 0) return rc;
    int64_t since = started_ns ? started_ns : st.watch->flagged_since.load(std::memory_order_relaxed);
    double seconds = double(monotonic_ns() - since) * 1e-9;
    Ref seq_obj = Ref::steal(PyLong_FromUnsignedLongLong(seq));
    Ref duration = Ref::steal(PyFloat_FromDouble(seconds));
    if (!seq_obj || !duration) return -1;
    PyObject* args[] = {reinterpret_cast<PyObject*>(self), entry, seq_obj.get(), duration.get()};
    Ref r = Ref::steal(PyObject_VectorcallMethod(self->s.st->s_watch_finished, args,
                                                 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr));
    if (r) return 0;
    // The watch reports on_slow's own failures; what comes here unwinds
    // the loop, as from a callback, or is a failure of the report itself.
    if (must_propagate()) return -1;
    PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(self));
    return 0;
}

int run_timed(CoreLoop* self, PyObject* entry) {
    LoopStats& st = self->s.stats;
    // A batch's first callback starts when it is taken; each next one
    // where the one before it ended.
    if (st.timing_iteration != st.iterations) {
        st.timing_iteration = st.iterations;
        st.timing_last_ns = monotonic_ns();
    }
    int64_t started = st.timing_last_ns;
    // Read before the callback, which may stop the watch.
    WatchShared* w = st.watching ? st.watch : nullptr;
    uint64_t seq = w ? watch_begin(*w, entry) : 0;
    int rc = run_entry(self, entry);
    st.timing_last_ns = monotonic_ns();
    st.durations.add(st.timing_last_ns - started);
    if (seq && watch_end(*w, seq)) return report_slow(self, entry, seq, started, rc);
    return rc;
}

namespace {

PyObject* histogram_tuple(const Histogram& h) {
    Ref counts = Ref::steal(PyTuple_New(Histogram::kBuckets));
    if (!counts) return nullptr;
    for (int k = 0; k < Histogram::kBuckets; ++k) {
        PyObject* n = PyLong_FromUnsignedLongLong(h.counts[k]);
        if (!n) return nullptr;
        PyTuple_SET_ITEM(counts.get(), k, n);
    }
    return Py_BuildValue("(Od)", counts.get(), double(h.sum_ns) * 1e-9);
}

// {kind: count} of the transports registered with the loop, the kind being
// the transport type's name ("StreamTransport", ...).
PyObject* open_transports(LoopState& s) {
    Ref kinds = Ref::steal(PyDict_New());
    if (!kinds) return nullptr;
    for (const FdWatch& w : s.fds) {
        if (!w.transport) continue;
        const char* name = Py_TYPE(w.transport)->tp_name;
        const char* dot = std::strrchr(name, '.');
        Ref key = Ref::steal(PyUnicode_FromString(dot ? dot + 1 : name));
        if (!key) return nullptr;
        PyObject* count = PyDict_GetItemWithError(kinds.get(), key.get());  // borrowed
        if (!count && PyErr_Occurred()) return nullptr;
        Ref next = Ref::steal(PyLong_FromLong(count ? PyLong_AsLong(count) + 1 : 1));
        if (!next || PyDict_SetItem(kinds.get(), key.get(), next.get()) < 0) return nullptr;
    }
    return kinds.release();
}

PyObject* u64(uint64_t v) { return PyLong_FromUnsignedLongLong(v); }

// loop._stats_snapshot(reset): the raw figures, as a dict that
// cxxloop.LoopStats is built from; `reset` zeroes them after reading, in
// the same step.
PyObject* stats_snapshot(PyObject* op, PyObject* reset_arg) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    int reset = PyObject_IsTrue(reset_arg);
    if (reset < 0) return nullptr;
    LoopState& s = self->s;
    LoopStats& st = s.stats;
    Ref snapshot = Ref::steal(PyDict_New());
    if (!snapshot) return nullptr;
    // Each figure is made only once the previous one is stored.
    auto add = [&](const char* key, PyObject* value) {
        Ref v = Ref::steal(value);
        return v && PyDict_SetItemString(snapshot.get(), key, v.get()) == 0;
    };
    bool ok = add("enabled", PyBool_FromLong(st.on)) && add("timing", PyBool_FromLong(st.timing)) &&
              add("iterations", u64(st.iterations)) && add("callbacks", u64(st.callbacks)) &&
              add("timers_scheduled", u64(st.timers_scheduled)) && add("timers_fired", u64(st.timers_fired)) &&
              add("timers_cancelled", u64(st.timers_cancelled)) && add("io_events", u64(st.io_events)) &&
              add("bytes_read", u64(st.bytes_read)) && add("bytes_written", u64(st.bytes_written)) &&
              add("slow_callbacks", u64(st.slow_callbacks)) && add("ready", PyLong_FromSize_t(s.ready.size())) &&
              add("transports", open_transports(s)) && add("lag", histogram_tuple(st.lag)) &&
              add("callback_duration", histogram_tuple(st.durations));
    if (!ok) return nullptr;
    if (reset) st.reset();
    return snapshot.release();
}

// loop.set_stats(enabled, /, *, timing=False)
PyObject* set_stats(PyObject* op, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    CoreLoop* self = reinterpret_cast<CoreLoop*>(op);
    ModuleState* st = self->s.st;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "set_stats() takes 1 positional argument but %zd were given", nargs);
        return nullptr;
    }
    PyObject* timing_arg = Py_False;
    if (!parse_kwonly(st, "set_stats", args, nargs, kwnames, {st->s_timing}, {&timing_arg})) return nullptr;
    int enabled = PyObject_IsTrue(args[0]);
    int timing = enabled < 0 ? -1 : PyObject_IsTrue(timing_arg);
    if (timing < 0) return nullptr;
    LoopStats& stats = self->s.stats;
    if (!enabled && timing) {
        PyErr_SetString(PyExc_ValueError, "callback timing needs the stats enabled");
        return nullptr;
    }
    if (!enabled && stats.watching) {
        PyErr_SetString(PyExc_RuntimeError, "the loop is watched (cxxloop.watch): its stats stay on until it stops");
        return nullptr;
    }
    stats.set_modes(enabled, timing, stats.watching);
    Py_RETURN_NONE;
}

}  // namespace

const PyMethodDef loop_stats_methods[] = {
    method_fastcall_kw<set_stats>("set_stats",
                                  "set_stats(enabled, /, *, timing=False): keep the counters of loop.stats() or not; "
                                  "timing also measures each callback's duration."),
    method_o<stats_snapshot>("_stats_snapshot", nullptr),
    kMethodsEnd,
};

int init_stats_constants(PyObject* module) {
    Ref bounds = Ref::steal(PyTuple_New(Histogram::kBuckets - 1));
    if (!bounds) return -1;
    for (int k = 0; k < Histogram::kBuckets - 1; ++k) {
        PyObject* b = PyFloat_FromDouble(Histogram::bound(k));
        if (!b) return -1;
        PyTuple_SET_ITEM(bounds.get(), k, b);
    }
    return PyModule_AddObjectRef(module, "HISTOGRAM_BOUNDS", bounds.get());
}

}  // namespace cxxloop::py
