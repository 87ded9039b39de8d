// Method tables and type slots from C++ functions.
//
// Every entry point CPython calls goes through Guard<F>: a C++ allocation
// failure (std::bad_alloc from a container) inside F becomes MemoryError
// instead of unwinding through CPython's C frames, which would terminate
// the process. The helpers also hold the cast each PyMethodDef flavour
// needs, in one place.
#pragma once

#include <new>
#include <type_traits>

#include "pyref.hpp"

namespace cxxloop::py {

template <class R>
constexpr R error_result() noexcept {
    if constexpr (std::is_same_v<R, PySendResult>) {
        return PYGEN_ERROR;
    } else if constexpr (std::is_pointer_v<R>) {
        return nullptr;
    } else {
        return R(-1);
    }
}

template <auto F>
struct Guard;

template <class R, class... A, R (*F)(A...)>
struct Guard<F> {
    static R call(A... args) noexcept {
        try {
            return F(args...);
        } catch (const std::bad_alloc&) {
            PyErr_NoMemory();
            return error_result<R>();
        }
    }
};

template <auto F>
constexpr PyCFunction as_cfunction() noexcept {
    return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&Guard<F>::call));
}

// F(self, unused): a method without arguments.
template <auto F>
constexpr PyMethodDef method_noargs(const char* name, const char* doc) noexcept {
    return {name, as_cfunction<F>(), METH_NOARGS, doc};
}

// F(self, arg): a method of one positional argument.
template <auto F>
constexpr PyMethodDef method_o(const char* name, const char* doc) noexcept {
    return {name, as_cfunction<F>(), METH_O, doc};
}

// F(self, args, nargs): positional arguments only.
template <auto F>
constexpr PyMethodDef method_fastcall(const char* name, const char* doc) noexcept {
    return {name, as_cfunction<F>(), METH_FASTCALL, doc};
}

// F(self, args, nargsf, kwnames).
template <auto F>
constexpr PyMethodDef method_fastcall_kw(const char* name, const char* doc) noexcept {
    return {name, as_cfunction<F>(), METH_FASTCALL | METH_KEYWORDS, doc};
}

// F(self, args_tuple, kwargs_dict).
template <auto F>
constexpr PyMethodDef method_varargs_kw(const char* name, const char* doc) noexcept {
    return {name, as_cfunction<F>(), METH_VARARGS | METH_KEYWORDS, doc};
}

// F(self, args_tuple).
template <auto F>
constexpr PyMethodDef method_varargs(const char* name, const char* doc) noexcept {
    return {name, as_cfunction<F>(), METH_VARARGS, doc};
}

constexpr PyMethodDef kMethodsEnd = {nullptr, nullptr, 0, nullptr};

// A type slot (tp_call, tp_repr, am_send, ...) for PyType_Slot.
template <auto F>
void* slot() noexcept {
    return reinterpret_cast<void*>(&Guard<F>::call);
}

}  // namespace cxxloop::py
