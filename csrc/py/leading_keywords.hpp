// asyncio's loop methods are Python functions, so their leading parameters
// may also be given by keyword: call_later(delay=1, callback=f),
// remove_reader(fd=sock), run_until_complete(future=coro). The C++ methods
// read them by position; these adapters move such keywords into place
// first. A call that passes its leading arguments by position pays one test.
//
// Sig names the method and its leading parameters, as asyncio does:
//   method_fastcall_kw<by_keyword<call_later, Sig<"call_later", "delay", "callback">>>(...)
#pragma once

#include <Python.h>

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <span>

namespace cxxloop::py {

// A string literal as a template argument.
template <size_t N>
struct Literal {
    char text[N];
    constexpr Literal(const char (&s)[N]) { std::copy_n(s, N, text); }
};

template <Literal Method, Literal... Params>
struct Sig {
    static constexpr const char* method = Method.text;
    static constexpr const char* params[] = {Params.text...};
};

using FastcallKw = PyObject* (*)(PyObject*, PyObject* const*, size_t, PyObject*);

// The slow path: `f` called with the leading parameters that the call gave
// by keyword moved to their positions, and the other keywords left as they
// were.
PyObject* call_with_leading_keywords(FastcallKw f, const char* method, std::span<const char* const> params,
                                     PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);

// F(self, args, nargsf, kwnames) whose first len(Sig::params) parameters
// may come by keyword.
template <auto F, class Sig>
PyObject* by_keyword(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames && nargs < Py_ssize_t(std::size(Sig::params))) [[unlikely]] {
        return call_with_leading_keywords(F, Sig::method, Sig::params, self, args, nargs, kwnames);
    }
    return F(self, args, nargsf, kwnames);
}

// F(self, args, nargs), which takes no keyword, and F(self, arg), a
// method of exactly one parameter, as F(self, args, nargsf, kwnames).
template <auto F, class Sig>
PyObject* as_positional(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    if (kwnames && PyTuple_GET_SIZE(kwnames) > 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", Sig::method,
                     PyTuple_GET_ITEM(kwnames, 0));
        return nullptr;
    }
    return F(self, args, PyVectorcall_NARGS(nargsf));
}

template <auto F, class Sig>
PyObject* as_one(PyObject* self, PyObject* const* args, size_t nargs) {
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes exactly one argument (%zd given)", Sig::method, Py_ssize_t(nargs));
        return nullptr;
    }
    return F(self, args[0]);
}

// The same as by_keyword, for those two kinds of F.
template <auto F, class Sig>
PyObject* positional_by_keyword(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    return by_keyword<as_positional<F, Sig>, Sig>(self, args, nargsf, kwnames);
}

template <auto F, class Sig>
PyObject* one_by_keyword(PyObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
    return by_keyword<as_positional<as_one<F, Sig>, Sig>, Sig>(self, args, nargsf, kwnames);
}

}  // namespace cxxloop::py
