// Several level-triggered sources wired-OR onto one interrupt line (PCI INTx# is shared,
// open-drain: PCI Local Bus 3.0 §2.2.6). The line is high while any source is high.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "irq/irq_line.h"

namespace vireo {

class SharedIrqLine {
public:
    explicit SharedIrqLine(IrqLine& line) : m_line(line) {}

    // A new source on this line; the SharedIrqLine must outlive it. At most 64 sources.
    std::unique_ptr<IrqLine> add_source() { return std::make_unique<Source>(*this, m_sources++); }

private:
    class Source final : public IrqLine {
    public:
        Source(SharedIrqLine& shared, unsigned bit) : m_shared(shared), m_bit(bit) {}
        void set_level(bool high) override { m_shared.set(m_bit, high); }

    private:
        SharedIrqLine& m_shared;
        unsigned m_bit;
    };

    void set(unsigned bit, bool high) {
        std::lock_guard lock(m_mutex);
        const std::uint64_t before = m_asserted;
        if (high) {
            m_asserted |= std::uint64_t{1} << bit;
        } else {
            m_asserted &= ~(std::uint64_t{1} << bit);
        }
        if ((before != 0) != (m_asserted != 0) || high) {
            m_line.set_level(m_asserted != 0);
        }
    }

    IrqLine& m_line;
    std::mutex m_mutex;
    std::uint64_t m_asserted = 0;  // guarded by m_mutex
    unsigned m_sources = 0;
};

}  // namespace vireo
