#include "seccomp/filter_parser.h"

#include <seccomp.h>

#include <cstdint>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/read_file.h"

namespace vireo::seccomp {

namespace {

using Json = nlohmann::json;

// A filter file is a few hundred rules; anything far larger is a mistake (or not a filter).
constexpr std::size_t kMaxFileSize = 4 << 20;
constexpr std::size_t kMaxRules = 4096;
constexpr std::size_t kMaxDepth = 8;  // top object > filter > rules > rule > args > cond > op

std::string known_categories() {
    std::string out;
    for (std::size_t i = 0; i < kThreadKindCount; ++i) {
        if (static_cast<ThreadKind>(i) == ThreadKind::Launcher) {
            continue;
        }
        out += out.empty() ? "" : ", ";
        out += kThreadKindNames[i];
    }
    return out;
}

const char* type_name(const Json& v) {
    return v.type_name();
}

// Checks that `object` has only `known` keys; the error names the first other one.
Result<void> only_keys(const Json& object, std::initializer_list<std::string_view> known,
                       const std::string& where) {
    for (const auto& [key, value] : object.items()) {
        bool found = false;
        for (auto k : known) {
            found = found || k == key;
        }
        if (!found) {
            std::string list;
            for (auto k : known) {
                list += list.empty() ? "" : ", ";
                list += k;
            }
            return Error(fmt::format("{}: unknown field '{}' (expected {})", where, key, list));
        }
    }
    return ok();
}

Result<std::uint64_t> read_uint(const Json& v, const std::string& where, std::uint64_t max) {
    if (!v.is_number_integer() ||
        (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0)) {
        return Error(fmt::format("{}: expected a non-negative integer, got {}", where,
                                 v.is_number() ? v.dump() : std::string(type_name(v))));
    }
    const auto n = v.get<std::uint64_t>();
    if (n > max) {
        return Error(fmt::format("{}: {} is larger than {}", where, n, max));
    }
    return n;
}

Result<Action> read_action(const Json& v, const std::string& where) {
    if (v.is_string()) {
        const auto s = v.get<std::string>();
        if (s == "allow") {
            return Action{Action::Kind::Allow, 0};
        }
        if (s == "trap") {
            return Action{Action::Kind::Trap, 0};
        }
        if (s == "kill" || s == "kill_process") {
            return Action{Action::Kind::KillProcess, 0};
        }
        if (s == "kill_thread") {
            return Action{Action::Kind::KillThread, 0};
        }
        if (s == "log") {
            return Action{Action::Kind::Log, 0};
        }
    } else if (v.is_object() && v.size() == 1) {
        const std::string key = v.begin().key();
        const Json& value = v.begin().value();
        if (key == "errno") {
            auto n = read_uint(value, where + ".errno", 4095);
            if (!n) {
                return n.error();
            }
            return Action{Action::Kind::Errno, static_cast<std::uint32_t>(*n)};
        }
        if (key == "trace") {
            auto n = read_uint(value, where + ".trace", 0xffff);
            if (!n) {
                return n.error();
            }
            return Action{Action::Kind::Trace, static_cast<std::uint32_t>(*n)};
        }
    }
    return Error(fmt::format(
        "{}: bad action {} (expected \"allow\", \"trap\", \"kill_process\", \"kill_thread\", "
        "\"kill\", \"log\", {{\"errno\": N}} or {{\"trace\": N}})",
        where, v.dump()));
}

Result<ArgCondition> read_condition(const Json& v, const std::string& where) {
    if (!v.is_object()) {
        return Error(fmt::format("{}: expected an object, got {}", where, type_name(v)));
    }
    if (auto r = only_keys(v, {"index", "type", "op", "val", "comment"}, where); !r) {
        return r.error();
    }
    for (const char* key : {"index", "type", "op", "val"}) {
        if (!v.contains(key)) {
            return Error(fmt::format("{}: missing '{}'", where, key));
        }
    }
    ArgCondition c;
    auto index = read_uint(v["index"], where + ".index", 5);
    if (!index) {
        return Error(fmt::format("{}.index: a system call has arguments 0 to 5, got {}", where,
                                 v["index"].dump()));
    }
    c.index = static_cast<unsigned>(*index);
    const Json& type = v["type"];
    if (type == "dword") {
        c.width = ArgWidth::Dword;
    } else if (type == "qword") {
        c.width = ArgWidth::Qword;
    } else {
        return Error(fmt::format("{}.type: {} is not \"dword\" or \"qword\"", where, type.dump()));
    }
    const std::uint64_t max = c.width == ArgWidth::Dword ? 0xffffffffULL : UINT64_MAX;
    const Json& op = v["op"];
    static constexpr std::pair<std::string_view, CmpOp> kOps[] = {
        {"eq", CmpOp::Eq}, {"ne", CmpOp::Ne}, {"lt", CmpOp::Lt},
        {"le", CmpOp::Le}, {"gt", CmpOp::Gt}, {"ge", CmpOp::Ge}};
    bool known_op = false;
    if (op.is_string()) {
        for (const auto& [n, o] : kOps) {
            if (op.get<std::string>() == n) {
                c.op = o;
                known_op = true;
            }
        }
    } else if (op.is_object() && op.size() == 1 && op.contains("masked_eq")) {
        auto mask = read_uint(op["masked_eq"], where + ".op.masked_eq", max);
        if (!mask) {
            return mask.error();
        }
        c.op = CmpOp::MaskedEq;
        c.mask = *mask;
        known_op = true;
    }
    if (!known_op) {
        return Error(fmt::format(
            "{}.op: bad op {} (expected \"eq\", \"ne\", \"lt\", \"le\", \"gt\", \"ge\" or "
            "{{\"masked_eq\": MASK}})",
            where, op.dump()));
    }
    auto val = read_uint(v["val"], where + ".val", max);
    if (!val) {
        return c.width == ArgWidth::Dword && v["val"].is_number_unsigned()
                   ? Error(fmt::format("{}.val: {} does not fit a dword (32 bits)", where,
                                       v["val"].dump()))
                   : val.error();
    }
    c.val = *val;
    if (c.op == CmpOp::MaskedEq && (c.val & ~c.mask) != 0) {
        return Error(fmt::format("{}: val {:#x} has bits outside the mask {:#x}: never matches",
                                 where, c.val, c.mask));
    }
    if (v.contains("comment") && !v["comment"].is_string()) {
        return Error(fmt::format("{}.comment: expected a string", where));
    }
    return c;
}

Result<Rule> read_rule(const Json& v, const std::string& where) {
    if (!v.is_object()) {
        return Error(fmt::format("{}: expected an object, got {}", where, type_name(v)));
    }
    if (auto r = only_keys(v, {"syscall", "args", "comment", "action"}, where); !r) {
        return r.error();
    }
    if (!v.contains("syscall") || !v["syscall"].is_string()) {
        return Error(fmt::format("{}: 'syscall' (a system call's name) is missing", where));
    }
    Rule rule;
    rule.syscall = v["syscall"].get<std::string>();
    const std::string at = fmt::format("{} ({})", where, rule.syscall);
    const int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_NATIVE, rule.syscall.c_str());
    if (nr == __NR_SCMP_ERROR) {
        return Error(fmt::format("{}: unknown system call '{}'", where, rule.syscall));
    }
    if (nr < 0) {
        return Error(
            fmt::format("{}: system call '{}' does not exist on x86-64", where, rule.syscall));
    }
    rule.number = nr;
    if (v.contains("comment") && !v["comment"].is_string()) {
        return Error(fmt::format("{}.comment: expected a string", at));
    }
    if (v.contains("action")) {
        auto a = read_action(v["action"], at + ".action");
        if (!a) {
            return a.error();
        }
        rule.action = *a;
    }
    if (v.contains("args")) {
        const Json& args = v["args"];
        if (!args.is_array()) {
            return Error(fmt::format("{}.args: expected an array, got {}", at, type_name(args)));
        }
        if (args.size() > 6) {
            return Error(fmt::format("{}.args: {} conditions; a system call has 6 arguments", at,
                                     args.size()));
        }
        unsigned seen = 0;
        for (std::size_t i = 0; i < args.size(); ++i) {
            auto c = read_condition(args[i], fmt::format("{}.args[{}]", at, i));
            if (!c) {
                return c.error();
            }
            // libseccomp takes one comparison per argument in a rule.
            if ((seen >> c->index) & 1U) {
                return Error(fmt::format(
                    "{}.args[{}]: argument {} is already compared in this rule (one condition "
                    "per argument; write another rule for an alternative)",
                    at, i, c->index));
            }
            seen |= 1U << c->index;
            rule.args.push_back(*c);
        }
    }
    return rule;
}

Result<Filter> read_filter(const Json& v, const std::string& where) {
    if (!v.is_object()) {
        return Error(fmt::format("{}: expected an object, got {}", where, type_name(v)));
    }
    if (auto r = only_keys(v, {"default_action", "filter_action", "filter"}, where); !r) {
        return r.error();
    }
    for (const char* key : {"default_action", "filter_action", "filter"}) {
        if (!v.contains(key)) {
            return Error(fmt::format("{}: missing '{}'", where, key));
        }
    }
    Filter f;
    auto def = read_action(v["default_action"], where + ".default_action");
    if (!def) {
        return def.error();
    }
    f.default_action = *def;
    auto act = read_action(v["filter_action"], where + ".filter_action");
    if (!act) {
        return act.error();
    }
    f.filter_action = *act;
    const Json& rules = v["filter"];
    if (!rules.is_array()) {
        return Error(fmt::format("{}.filter: expected an array, got {}", where, type_name(rules)));
    }
    if (rules.size() > kMaxRules) {
        return Error(
            fmt::format("{}.filter: {} rules, at most {}", where, rules.size(), kMaxRules));
    }
    for (std::size_t i = 0; i < rules.size(); ++i) {
        auto r = read_rule(rules[i], fmt::format("{}.filter[{}]", where, i));
        if (!r) {
            return r.error();
        }
        const Action a = r->action.value_or(f.filter_action);
        if (a == f.default_action) {
            return Error(
                fmt::format("{}.filter[{}] ({}): its action is the default action, so "
                            "the rule would do nothing",
                            where, i, r->syscall));
        }
        f.rules.push_back(std::move(*r));
    }
    return f;
}

}  // namespace

Result<FilterSet> parse_filters(std::string_view json_text) {
    // Duplicate keys (which nlohmann would silently collapse to the last) and runaway nesting
    // are refused while parsing.
    std::vector<std::set<std::string>> keys;
    std::string problem;
    Json doc;
    try {
        doc = Json::parse(json_text, [&](int depth, Json::parse_event_t event, Json& parsed) {
            if (!problem.empty()) {
                return false;
            }
            if (static_cast<std::size_t>(depth) > kMaxDepth) {
                problem = "nested too deeply for a filter file";
                return false;
            }
            switch (event) {
                case Json::parse_event_t::object_start:
                    keys.emplace_back();
                    break;
                case Json::parse_event_t::object_end:
                    if (!keys.empty()) {
                        keys.pop_back();
                    }
                    break;
                case Json::parse_event_t::key:
                    if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) {
                        problem = fmt::format("duplicate key '{}'", parsed.get<std::string>());
                        return false;
                    }
                    break;
                default:
                    break;
            }
            return true;
        });
    } catch (const Json::exception& e) {
        return Error(fmt::format("not valid JSON: {}", e.what()));
    }
    if (!problem.empty()) {
        return Error(problem);
    }
    if (!doc.is_object()) {
        return Error(fmt::format("expected an object of thread categories ({}), got {}",
                                 known_categories(), type_name(doc)));
    }
    if (doc.empty()) {
        return Error(fmt::format("no thread categories (expected some of {})", known_categories()));
    }
    FilterSet set;
    for (const auto& [category, value] : doc.items()) {
        const auto kind = thread_kind_from_name(category);
        if (!kind) {
            return Error(fmt::format("unknown thread category '{}' (expected {})", category,
                                     known_categories()));
        }
        if (*kind == ThreadKind::Launcher) {
            return Error(
                "category 'launcher' cannot be given: the thread that starts the others runs "
                "under the union of all filters");
        }
        auto f = read_filter(value, category);
        if (!f) {
            return f.error();
        }
        set[*kind] = std::move(*f);
    }
    return set;
}

Result<FilterSet> load_filter_file(const std::string& path) {
    auto bytes = read_whole_file(path, kMaxFileSize);
    if (!bytes) {
        return bytes.error().wrap(fmt::format("seccomp filter {}", path));
    }
    auto set = parse_filters(
        std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
    if (!set) {
        return set.error().wrap(fmt::format("seccomp filter {}", path));
    }
    return set;
}

}  // namespace vireo::seccomp
