// Where the C++ part of an object sits when its Python base is one of
// asyncio's classes (handles and transports; see handle.hpp and
// stream_transport.hpp): right after the largest of those bases' slots.
//
// These are the process's only module-level values. They are layout
// constants, not state: asyncio's classes have the same slots in every
// interpreter of a build, so every import computes the same offsets, and
// a later import checks that it does.
#pragma once

#include "pyref.hpp"

namespace cxxloop::py {

struct Layout {
    Py_ssize_t handle_data;     // HandleData in Handle and TimerHandle
    Py_ssize_t transport_data;  // StreamData in the transport types
};

extern Layout layout;

// Sets `layout` at the first import; a later import must find the same
// offsets. Returns -1 with ImportError set if it does not.
int settle_layout(const Layout& computed);

}  // namespace cxxloop::py
