#include "module_state.hpp"

#include <mutex>

#include "layout.hpp"

namespace cxxloop::py {

Layout layout;

int settle_layout(const Layout& computed) {
    static std::mutex mu;
    static bool settled = false;
    std::lock_guard<std::mutex> lock(mu);
    if (!settled) {
        layout = computed;
        settled = true;
        return 0;
    }
    if (layout.handle_data == computed.handle_data && layout.transport_weaklist == computed.transport_weaklist &&
        layout.transport_dict == computed.transport_dict && layout.transport_data == computed.transport_data) {
        return 0;
    }
    PyErr_SetString(PyExc_ImportError, "cxxloop._core: asyncio's classes changed size since the first import");
    return -1;
}

ModuleState* state_of_type(PyTypeObject* tp) noexcept {
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) return nullptr;
    PyObject* module = reinterpret_cast<PyHeapTypeObject*>(tp)->ht_module;
    return module ? module_state(module) : nullptr;
}

namespace {

PyObject* import_attr(const char* module, const char* name) {
    Ref mod = Ref::steal(PyImport_ImportModule(module));
    if (!mod) return nullptr;
    return PyObject_GetAttrString(mod.get(), name);
}

}  // namespace

int init_module_state(ModuleState* st) {
    struct Import {
        PyObject** out;
        const char* module;
        const char* name;
    };
    const Import imports[] = {
#define CXXLOOP_ROW(field, module, name) {&st->field, module, name},
        CXXLOOP_IMPORTED_OBJECTS(CXXLOOP_ROW)
#undef CXXLOOP_ROW
    };
    for (const Import& i : imports) {
        if (!(*i.out = import_attr(i.module, i.name))) return -1;
    }

    struct Flag {
        bool* out;
        const char* name;
    };
    const Flag flags[] = {
#define CXXLOOP_ROW(field, name) {&st->field, name},
        CXXLOOP_IMPORTED_FLAGS(CXXLOOP_ROW)
#undef CXXLOOP_ROW
    };
    for (const Flag& f : flags) {
        Ref value = Ref::steal(import_attr("cxxloop._asyncio_internals", f.name));
        int truth = value ? PyObject_IsTrue(value.get()) : -1;
        if (truth < 0) return -1;
        *f.out = truth;
    }

    struct Size {
        size_t* out;
        const char* name;
    };
    const Size sizes[] = {
#define CXXLOOP_ROW(field, name) {&st->field, name},
        CXXLOOP_IMPORTED_SIZES(CXXLOOP_ROW)
#undef CXXLOOP_ROW
    };
    for (const Size& z : sizes) {
        Ref value = Ref::steal(import_attr("cxxloop._asyncio_internals", z.name));
        size_t n = value ? PyLong_AsSize_t(value.get()) : size_t(-1);
        if (n == size_t(-1) && PyErr_Occurred()) return -1;
        *z.out = n;
    }

    struct Name {
        PyObject** out;
        const char* text;
    };
    const Name names[] = {
#define CXXLOOP_ROW(field, text) {&st->s_##field, text},
        CXXLOOP_INTERNED_NAMES(CXXLOOP_ROW)
#undef CXXLOOP_ROW
    };
    for (const Name& n : names) {
        if (!(*n.out = PyUnicode_InternFromString(n.text))) return -1;
    }

    if (!(st->empty_tuple = PyTuple_New(0))) return -1;
    if (!(st->kw_loop = PyTuple_Pack(1, st->s_loop))) return -1;
    if (!(st->kw_context = PyTuple_Pack(1, st->s_context))) return -1;
    if (!(st->kw_debug = PyTuple_Pack(1, st->s_debug))) return -1;
    if (!(st->kw_wait = PyTuple_Pack(1, st->s_wait))) return -1;
    if (!(st->kw_asyncgen_hooks = PyTuple_Pack(2, st->s_firstiter, st->s_finalizer))) return -1;
    return 0;
}

namespace {

// The fields that can be part of a reference cycle: types, and objects
// from other modules (a function's globals can reach this module again).
// Strings and tuples of strings cannot, so only m_free releases those.
template <class Fn>
void for_each_cyclic(ModuleState* st, Fn fn) {
    for (PyTypeObject** tp : {&st->handle_type, &st->timer_handle_type, &st->threadsafe_handle_type, &st->loop_type, &st->stream_transport_type,
                              &st->read_pipe_type, &st->write_pipe_type, &st->datagram_type, &st->tls_transport_type, &st->acceptor_type,
                              &st->sock_op_type, &st->task_step_type}) {
        fn(reinterpret_cast<PyObject**>(tp));
    }
#define CXXLOOP_ROW(field, ...) fn(&st->field);
    CXXLOOP_IMPORTED_OBJECTS(CXXLOOP_ROW)
#undef CXXLOOP_ROW
    fn(&st->run_until_complete_cb);
    fn(&st->loop_time_method);
}

// Frees the handles kept for reuse (each holds a reference to its type)
// and stops keeping more: after m_clear the types may be going away.
void close_free_lists(ModuleState* st) {
    st->free_lists_open = false;
    for (HandleFreeList* fl : {&st->handle_free, &st->timer_free}) {
        while (fl->count > 0) {
            PyObject* op = fl->items[--fl->count];
            PyTypeObject* tp = Py_TYPE(op);
            tp->tp_free(op);
            Py_DECREF(tp);
        }
    }
}

}  // namespace

int traverse_module_state(ModuleState* st, visitproc visit, void* arg) {
    int rc = 0;
    for_each_cyclic(st, [&](PyObject** field) {
        if (rc == 0 && *field) rc = visit(*field, arg);
    });
    return rc;
}

void clear_module_state(ModuleState* st) {
    close_free_lists(st);
    for_each_cyclic(st, [](PyObject** field) { Py_CLEAR(*field); });
}

void free_module_state(ModuleState* st) {
    clear_module_state(st);
#define CXXLOOP_ROW(field, ...) Py_CLEAR(st->s_##field);
    CXXLOOP_INTERNED_NAMES(CXXLOOP_ROW)
#undef CXXLOOP_ROW
    for (PyObject** field : {&st->empty_tuple, &st->kw_loop, &st->kw_context, &st->kw_debug, &st->kw_wait,
                             &st->kw_asyncgen_hooks, &st->name_alias}) {
        Py_CLEAR(*field);
    }
    st->name_alias_of = nullptr;
    st->last_other_type = nullptr;
}

}  // namespace cxxloop::py
