#include "leading_keywords.hpp"

#include <vector>

#include "pyref.hpp"

namespace cxxloop::py {

namespace {

// Where `name` is among the call's keywords, or -1.
Py_ssize_t keyword_index(PyObject* kwnames, const char* name) {
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; ++k) {
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, k), name) == 0) return k;
    }
    return -1;
}

}  // namespace

PyObject* call_with_leading_keywords(FastcallKw f, const char* method, std::span<const char* const> params,
                                     PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
    Py_ssize_t nkw = PyTuple_GET_SIZE(kwnames);
    std::vector<PyObject*> stack(args, args + nargs);
    std::vector<bool> moved(size_t(nkw), false);
    for (size_t i = size_t(nargs); i < params.size(); ++i) {
        Py_ssize_t k = keyword_index(kwnames, params[i]);
        if (k < 0) {
            // As Python words a call that leaves a positional parameter out.
            PyErr_Format(PyExc_TypeError, "%s() missing 1 required positional argument: '%s'", method, params[i]);
            return nullptr;
        }
        stack.push_back(args[nargs + k]);
        moved[size_t(k)] = true;
    }
    Py_ssize_t npos = Py_ssize_t(stack.size());
    Ref rest = Ref::steal(PyTuple_New(nkw - (npos - nargs)));
    if (!rest) return nullptr;
    Py_ssize_t r = 0;
    for (Py_ssize_t k = 0; k < nkw; ++k) {
        if (moved[size_t(k)]) continue;
        PyTuple_SET_ITEM(rest.get(), r++, Py_NewRef(PyTuple_GET_ITEM(kwnames, k)));
        stack.push_back(args[nargs + k]);
    }
    return f(self, stack.data(), size_t(npos), r > 0 ? rest.get() : nullptr);
}

}  // namespace cxxloop::py
