// An API request must always get an answer and never take the VMM down: an exception that
// escapes the code applying it (std::bad_alloc from a request that asks for too much, a
// std::system_error from a thread that could not start, a bug) would otherwise reach the VMM
// thread's top and terminate the process with every guest in it.
#pragma once

#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "api/api_response.h"

namespace vireo {

// Runs `apply` (returning ApiResponse) and turns what it throws into an answer: std::bad_alloc
// is 400 (the request needed more memory than vireo could get; nothing of it took effect that
// the VMM depends on), any other exception 500 (vireo's own fault), both naming `what`.
template <class F>
ApiResponse answer_without_throwing(std::string_view what, F&& apply) noexcept {
    try {
        try {
            return std::forward<F>(apply)();
        } catch (const std::bad_alloc&) {
            return ApiResponse::bad_request(std::string(what) +
                                            ": out of memory (the request needs more memory than "
                                            "vireo could allocate)");
        } catch (const std::exception& e) {
            return ApiResponse::internal_error(std::string(what) + ": internal error: " + e.what());
        } catch (...) {
            return ApiResponse::internal_error(std::string(what) +
                                               ": internal error: unknown exception");
        }
    } catch (...) {
        // Building the message itself failed (no memory left): an answer without a message.
        return ApiResponse{500, Fault{}};
    }
}

}  // namespace vireo
