// The small in-house layer over the CPython C API.
//
// Ref owns exactly one strong reference and releases it on scope exit, so
// every early error return is leak-free without a goto ladder. A raw
// PyObject* anywhere else in the module is borrowed.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <utility>

namespace cxxloop::py {

class Ref {
public:
    Ref() noexcept = default;
    // Takes ownership of a new reference (may be null after a failed call).
    static Ref steal(PyObject* o) noexcept { return Ref(o); }
    // Adds a reference to a borrowed object.
    static Ref borrow(PyObject* o) noexcept {
        Py_XINCREF(o);
        return Ref(o);
    }

    Ref(Ref&& other) noexcept : p_(std::exchange(other.p_, nullptr)) {}
    Ref& operator=(Ref&& other) noexcept {
        Ref tmp(std::move(other));
        std::swap(p_, tmp.p_);
        return *this;
    }
    Ref(const Ref&) = delete;
    Ref& operator=(const Ref&) = delete;
    ~Ref() { Py_XDECREF(p_); }

    PyObject* get() const noexcept { return p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    // Gives the reference to the caller (for returning to Python).
    PyObject* release() noexcept { return std::exchange(p_, nullptr); }

private:
    explicit Ref(PyObject* o) noexcept : p_(o) {}
    PyObject* p_ = nullptr;
};

// Replaces *slot with a new strong reference to value (may be null),
// releasing the old one only after the store, as Py_XSETREF does.
inline void set_ref(PyObject** slot, PyObject* value) noexcept {
    Py_XINCREF(value);
    Py_XSETREF(*slot, value);
}

struct ModuleState;

// The slow half of name_is(): equal contents, another object (pyref.cpp).
bool name_equal(ModuleState* st, PyObject* kwname, PyObject* name) noexcept;

// True if a keyword name from a vectorcall kwnames tuple equals `name`.
// Callers pass interned names; pointer equality is the common case.
inline bool name_is(ModuleState* st, PyObject* kwname, PyObject* name) noexcept {
    return kwname == name || name_equal(st, kwname, name);
}

// Parses the keyword part of a METH_FASTCALL | METH_KEYWORDS call whose
// keywords are all optional and keyword-only: for each kwname that equals
// names[i], *outs[i] receives the borrowed value. Raises TypeError for an
// unknown keyword, as Python functions do.
template <size_t N>
bool parse_kwonly(ModuleState* st, const char* func, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                  PyObject* const (&names)[N], PyObject** const (&outs)[N]) {
    if (!kwnames) return true;
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; ++k) {
        PyObject* kw = PyTuple_GET_ITEM(kwnames, k);
        size_t i = 0;
        while (i < N && !name_is(st, kw, names[i])) ++i;
        if (i == N) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", func, kw);
            return false;
        }
        *outs[i] = args[nargs + k];
    }
    return true;
}

}  // namespace cxxloop::py
