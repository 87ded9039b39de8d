// cxxloop._core: module definition, with multi-phase initialisation.
#include <algorithm>
#include <initializer_list>
#include <new>

#include "handle.hpp"
#include "loop.hpp"
#include "loop_watch.hpp"
#include "module_state.hpp"
#include "sock_op.hpp"
#include "stream_transport.hpp"

namespace cxxloop::py {
namespace {

Py_ssize_t aligned_end(std::initializer_list<PyObject*> bases, size_t align) {
    Py_ssize_t end = 0;
    for (PyObject* base : bases) end = std::max(end, reinterpret_cast<PyTypeObject*>(base)->tp_basicsize);
    return (end + Py_ssize_t(align) - 1) / Py_ssize_t(align) * Py_ssize_t(align);
}

// HandleData goes after the largest of asyncio's handle classes, and a
// transport's weak-reference list, __dict__ and C++ object after the
// largest base of the transport types, so that each sits at one offset in
// all the types that hold it.
int settle_layout_from(const ModuleState* st) {
    Py_ssize_t slots = aligned_end({st->FlowControlMixin, st->ReadTransportBase, st->DatagramTransportBase},
                                   alignof(PyObject*));
    Py_ssize_t data = (slots + 2 * Py_ssize_t(sizeof(PyObject*)) + Py_ssize_t(alignof(Transport)) - 1) /
                      Py_ssize_t(alignof(Transport)) * Py_ssize_t(alignof(Transport));
    return settle_layout(Layout{
        aligned_end({st->HandleBase, st->TimerHandleBase, st->ThreadSafeHandleBase}, alignof(HandleData)),
        slots,
        slots + Py_ssize_t(sizeof(PyObject*)),
        data,
    });
}

// _core._PRIVATE_NAMES: the underscore names the core looks up, for the
// contract test to hold against asyncio's (tests/test_asyncio_contract.py).
int add_private_names(PyObject* module) {
    Ref names = Ref::steal(PyList_New(0));
    if (!names) return -1;
    for (const char* text : {
#define CXXLOOP_ROW(field, text) text,
             CXXLOOP_INTERNED_NAMES(CXXLOOP_ROW)
#undef CXXLOOP_ROW
         }) {
        if (text[0] != '_') continue;
        Ref name = Ref::steal(PyUnicode_FromString(text));
        if (!name || PyList_Append(names.get(), name.get()) < 0) return -1;
    }
    Ref frozen = Ref::steal(PyFrozenSet_New(names.get()));
    return frozen ? PyModule_AddObjectRef(module, "_PRIVATE_NAMES", frozen.get()) : -1;
}

int exec_module(PyObject* module) {
    ModuleState* st = new (module_state(module)) ModuleState();
    if (init_module_state(st) < 0 || settle_layout_from(st) < 0 || init_handle_types(module, st) < 0 || init_loop_type(module, st) < 0 ||
        init_stream_transport_type(module, st) < 0 || init_acceptor_type(module, st) < 0 ||
        init_pipe_transport_types(module, st) < 0 || init_datagram_transport_type(module, st) < 0 ||
        init_tls_transport_type(module, st) < 0 ||
        init_sock_op_type(module, st) < 0 || init_run_until_complete_cb(module, st) < 0 ||
        init_ready_gc(module) < 0 || add_private_names(module) < 0 || init_watchdog_type(module) < 0 ||
        init_stats_constants(module) < 0) {
        return -1;
    }
    return 0;
}

int traverse_module(PyObject* module, visitproc visit, void* arg) {
    ModuleState* st = module_state(module);
    return st->constructed ? traverse_module_state(st, visit, arg) : 0;
}

int clear_module(PyObject* module) {
    ModuleState* st = module_state(module);
    if (st->constructed) clear_module_state(st);
    return 0;
}

void free_module(void* module) {
    ModuleState* st = module_state(static_cast<PyObject*>(module));
    if (!st->constructed) return;
    free_module_state(st);
    st->~ModuleState();
}

PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(exec_module)},
    // Everything the module holds is in its state; the process-wide
    // values are layout constants (layout.hpp).
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    // Free-threaded builds: the loop relies on the GIL (docs/free_threading.md),
    // so such an interpreter turns it back on when it imports this module.
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, nullptr},
};

}  // namespace

PyModuleDef core_module_def = {
    PyModuleDef_HEAD_INIT,
    "cxxloop._core",
    "The C++ core of cxxloop: CoreLoop, Handle, TimerHandle, the transports, SockOp.",
    sizeof(ModuleState),
    nullptr,
    module_slots,
    traverse_module,
    clear_module,
    free_module,
};

}  // namespace cxxloop::py

PyMODINIT_FUNC PyInit__core() { return PyModuleDef_Init(&cxxloop::py::core_module_def); }
