// Write flow control, asyncio's _FlowControlMixin: the water marks, and
// pause_writing() / resume_writing() when the buffer crosses them.
#include <cmath>
#include <limits>

#include "methods.hpp"
#include "transport.hpp"

namespace cxxloop::py {
namespace {

// Calls protocol.pause_writing() / resume_writing(); a failure goes to the
// loop's exception handler, as asyncio's _FlowControlMixin reports it.
int call_flow(Transport* tr, PyObject* method, const char* message) {
    Ref r = Ref::steal(PyObject_CallMethodNoArgs(tr->protocol, method));
    return r ? 0 : tr->report_raised(message);
}

// The buffer size a water mark compares with: sizes are whole bytes, so
// `size > mark` and `size <= mark` hold exactly when they hold for
// floor(mark). Marks beyond any buffer size are the largest size.
int to_threshold(PyObject* mark, size_t* out) {
    if (PyLong_Check(mark)) {
        size_t v = PyLong_AsSize_t(mark);
        if (v == size_t(-1) && PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
            PyErr_Clear();
            v = std::numeric_limits<size_t>::max();
        }
        *out = v;
        return 0;
    }
    double d = PyFloat_AsDouble(mark);
    if (d == -1.0 && PyErr_Occurred()) return -1;
    d = std::floor(d);
    *out = d >= double(std::numeric_limits<size_t>::max()) ? std::numeric_limits<size_t>::max() : size_t(d);
    return 0;
}

}  // namespace

PyObject* water_mark(PyObject* given, size_t value) { return given ? Py_NewRef(given) : PyLong_FromSize_t(value); }

int set_water_marks(PyObject* high_arg, PyObject* low_arg, size_t default_high, PyObject** high_obj,
                    PyObject** low_obj, size_t* high_value, size_t* low_value) {
    Ref four = Ref::steal(PyLong_FromLong(4));
    if (!four) return -1;
    Ref high, low;
    if (high_arg != Py_None) {
        high = Ref::borrow(high_arg);
    } else if (low_arg == Py_None) {
        high = Ref::steal(PyLong_FromSize_t(default_high));
    } else {
        high = Ref::steal(PyNumber_Multiply(four.get(), low_arg));
    }
    if (!high) return -1;
    low = low_arg != Py_None ? Ref::borrow(low_arg) : Ref::steal(PyNumber_FloorDivide(high.get(), four.get()));
    if (!low) return -1;
    Ref zero = Ref::steal(PyLong_FromLong(0));
    if (!zero) return -1;
    int ordered = PyObject_RichCompareBool(high.get(), low.get(), Py_GE);
    if (ordered > 0) ordered = PyObject_RichCompareBool(low.get(), zero.get(), Py_GE);
    if (ordered < 0) return -1;
    if (!ordered) {
        PyErr_Format(PyExc_ValueError, "high (%R) must be >= low (%R) must be >= 0", high.get(), low.get());
        return -1;
    }
    size_t h, l;
    if (to_threshold(high.get(), &h) < 0 || to_threshold(low.get(), &l) < 0) return -1;
    *high_value = h;
    *low_value = l;
    Py_XSETREF(*high_obj, high.release());
    Py_XSETREF(*low_obj, low.release());
    return 0;
}

int Transport::maybe_pause_protocol() {
    if (!over_high_water() || protocol_paused) return 0;
    protocol_paused = true;
    return call_flow(this, state()->s_pause_writing, "protocol.pause_writing() failed");
}

int Transport::maybe_resume_protocol() {
    if (!protocol_paused || write_buffer_size() > low_water) return 0;
    protocol_paused = false;
    return call_flow(this, state()->s_resume_writing, "protocol.resume_writing() failed");
}

namespace {

PyObject* get_write_buffer_size(PyObject* t, PyObject*) {
    return PyLong_FromSize_t(transport_of(t)->write_buffer_size());
}

PyObject* get_write_buffer_limits(PyObject* t, PyObject*) {
    Transport* tr = transport_of(t);
    Ref low = Ref::steal(water_mark(tr->low_water_obj, tr->low_water));
    Ref high = Ref::steal(water_mark(tr->high_water_obj, tr->high_water));
    if (!low || !high) return nullptr;
    return PyTuple_Pack(2, low.get(), high.get());
}

PyObject* set_write_buffer_limits(PyObject* t, PyObject* args, PyObject* kwargs) {
    static const char* kwlist[] = {"high", "low", nullptr};
    PyObject *high_arg = Py_None, *low_arg = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:set_write_buffer_limits", const_cast<char**>(kwlist),
                                     &high_arg, &low_arg)) {
        return nullptr;
    }
    Transport* tr = transport_of(t);
    if (set_water_marks(high_arg, low_arg, tr->default_high_water(), &tr->high_water_obj, &tr->low_water_obj,
                        &tr->high_water, &tr->low_water) < 0 ||
        tr->after_write_limits_changed() < 0) {
        return nullptr;
    }
    Py_RETURN_NONE;
}

PyObject* get_protocol_paused(PyObject* t, void*) { return PyBool_FromLong(transport_of(t)->protocol_paused); }
PyObject* get_high_water(PyObject* t, void*) {
    Transport* tr = transport_of(t);
    return water_mark(tr->high_water_obj, tr->high_water);
}
PyObject* get_low_water(PyObject* t, void*) {
    Transport* tr = transport_of(t);
    return water_mark(tr->low_water_obj, tr->low_water);
}

}  // namespace

const PyMethodDef flow_control_methods[] = {
    method_noargs<get_write_buffer_size>("get_write_buffer_size", "Return the number of buffered bytes."),
    method_noargs<get_write_buffer_limits>("get_write_buffer_limits", "Return (low, high) water marks."),
    method_varargs_kw<set_write_buffer_limits>("set_write_buffer_limits", "set_write_buffer_limits(high=None, low=None)"),
    kMethodsEnd,
};

const PyGetSetDef flow_control_getsets[] = {
    {"_protocol_paused", get_protocol_paused, nullptr, nullptr, nullptr},
    {"_high_water", get_high_water, nullptr, nullptr, nullptr},
    {"_low_water", get_low_water, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace cxxloop::py
