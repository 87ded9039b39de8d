// Where the C++ part of an object sits when its Python base is one of
// asyncio's classes (handles and transports; see handle.hpp and
// transport.hpp): right after the largest of those bases' slots.
//
// These are the process's only module-level values. They are layout
// constants, not state: asyncio's classes have the same slots in every
// interpreter of a build, so every import computes the same offsets, and
// a later import checks that it does.
#pragma once

#include "pyref.hpp"

namespace cxxloop::py {

struct Layout {
    Py_ssize_t handle_data;         // HandleData in the handle types
    // The transport types: their weak-reference list and instance __dict__
    // slots, then the C++ Transport object.
    Py_ssize_t transport_weaklist;
    Py_ssize_t transport_dict;
    Py_ssize_t transport_data;
};



extern Layout layout;

// A transport object's __dict__ slot.
inline PyObject** transport_dict_slot(PyObject* t) noexcept {
    return reinterpret_cast<PyObject**>(reinterpret_cast<char*>(t) + layout.transport_dict);
}

// Sets `layout` at the first import; a later import must find the same
// offsets. Returns -1 with ImportError set if it does not.
int settle_layout(const Layout& computed);

}  // namespace cxxloop::py
