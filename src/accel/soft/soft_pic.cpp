#include "accel/soft/soft_pic.h"

namespace vireo::soft {

namespace {

constexpr unsigned kCascadeIr = 2;  // the slave's INT on the master's IR2
constexpr std::size_t kSaveSize = 10;

}  // namespace

SoftPic::SoftPic(Wake wake) : m_wake(std::move(wake)) {}

int SoftPic::highest(std::uint8_t bits) {
    for (int i = 0; i < 8; ++i) {
        if ((bits & (1u << i)) != 0) {
            return i;
        }
    }
    return -1;
}

int SoftPic::pending(const Chip& c) {
    const int req = highest(static_cast<std::uint8_t>(c.irr & ~c.imr));
    if (req < 0) {
        return -1;
    }
    const int served = highest(c.isr);
    return (served < 0 || req < served) ? req : -1;
}

bool SoftPic::output_locked() const {
    // The slave's output is the master's IR2 input: level-like while it has a request.
    Chip master = m_chip[0];
    if (pending(m_chip[1]) >= 0) {
        master.irr = static_cast<std::uint8_t>(master.irr | (1u << kCascadeIr));
    }
    return pending(master) >= 0;
}

bool SoftPic::output() const {
    std::lock_guard lock(m_mutex);
    return output_locked();
}

void SoftPic::set_irq(unsigned irq, bool level) {
    if (irq >= 16 || irq == kCascadeIr) {
        return;
    }
    bool wake = false;
    {
        std::lock_guard lock(m_mutex);
        Chip& c = m_chip[irq / 8];
        const auto bit = static_cast<std::uint8_t>(1u << (irq % 8));
        if (level && (c.level & bit) == 0) {
            c.irr |= bit;  // rising edge
            wake = output_locked();
        }
        c.level = static_cast<std::uint8_t>(level ? (c.level | bit) : (c.level & ~bit));
    }
    if (wake) {
        m_wake();
    }
}

int SoftPic::acknowledge() {
    std::lock_guard lock(m_mutex);
    Chip& master = m_chip[0];
    Chip& slave = m_chip[1];
    const int slave_ir = pending(slave);
    Chip view = master;
    if (slave_ir >= 0) {
        view.irr = static_cast<std::uint8_t>(view.irr | (1u << kCascadeIr));
    }
    const int ir = pending(view);
    if (ir < 0) {
        return (master.base & 0xf8) | 7;  // spurious IR7
    }
    auto take = [](Chip& c, int i) {
        const auto bit = static_cast<std::uint8_t>(1u << i);
        c.irr = static_cast<std::uint8_t>(c.irr & ~bit);
        if (!c.auto_eoi) {
            c.isr |= bit;
        }
        return (c.base & 0xf8) | i;
    };
    if (ir == static_cast<int>(kCascadeIr) && slave_ir >= 0) {
        if (!master.auto_eoi) {
            master.isr |= 1u << kCascadeIr;
        }
        return take(slave, slave_ir);
    }
    return take(master, ir);
}

void SoftPic::write_locked(unsigned chip, bool data, std::uint8_t v) {
    Chip& c = m_chip[chip];
    if (!data) {
        if ((v & 0x10) != 0) {
            // ICW1: start initialisation; the mask, ISR and IRR are cleared, ICW2 comes next.
            c.irr = c.isr = c.imr = 0;
            c.icw4 = (v & 0x01) != 0;
            c.single = (v & 0x02) != 0;
            c.auto_eoi = false;
            c.read_isr = false;
            c.init_step = 2;
            return;
        }
        if ((v & 0x08) != 0) {
            // OCW3: bit 1 set selects the register a read of this port returns (bit 0: ISR).
            if ((v & 0x02) != 0) {
                c.read_isr = (v & 0x01) != 0;
            }
            return;
        }
        // OCW2: bits 7:5 = 001/101 non-specific EOI, 011/111 specific EOI (IR in bits 2:0).
        const unsigned cmd = v >> 5;
        if (cmd == 1 || cmd == 5) {
            const int i = highest(c.isr);
            if (i >= 0) {
                c.isr = static_cast<std::uint8_t>(c.isr & ~(1u << i));
            }
        } else if (cmd == 3 || cmd == 7) {
            c.isr = static_cast<std::uint8_t>(c.isr & ~(1u << (v & 7)));
        }
        return;
    }
    switch (c.init_step) {
        case 2:  // ICW2: the vector base
            c.base = static_cast<std::uint8_t>(v & 0xf8);
            c.init_step = c.single ? (c.icw4 ? 4 : 0) : 3;
            return;
        case 3:  // ICW3: the cascade wiring (fixed here: slave on IR2)
            c.init_step = c.icw4 ? 4 : 0;
            return;
        case 4:  // ICW4: bit 1 auto-EOI
            c.auto_eoi = (v & 0x02) != 0;
            c.init_step = 0;
            return;
        default:  // OCW1: the mask
            c.imr = v;
            return;
    }
}

void SoftPic::pio_write(std::uint16_t port, std::span<const std::uint8_t> data) {
    if (data.empty()) {
        return;
    }
    bool wake = false;
    {
        std::lock_guard lock(m_mutex);
        write_locked(port >= 0xa0 ? 1 : 0, (port & 1) != 0, data[0]);
        wake = output_locked();  // an unmask or an EOI may let a request through
    }
    if (wake) {
        m_wake();
    }
}

void SoftPic::pio_read(std::uint16_t port, std::span<std::uint8_t> data) {
    if (data.empty()) {
        return;
    }
    std::fill(data.begin(), data.end(), 0);
    std::lock_guard lock(m_mutex);
    const Chip& c = m_chip[port >= 0xa0 ? 1 : 0];
    if ((port & 1) != 0) {
        data[0] = c.imr;
    } else {
        data[0] = c.read_isr ? c.isr : c.irr;
    }
}

std::vector<std::uint8_t> SoftPic::save(unsigned chip) const {
    std::lock_guard lock(m_mutex);
    const Chip& c = m_chip[chip & 1];
    return {1,
            c.irr,
            c.isr,
            c.imr,
            c.level,
            c.base,
            c.init_step,
            static_cast<std::uint8_t>((c.icw4 ? 1 : 0) | (c.single ? 2 : 0) | (c.auto_eoi ? 4 : 0) |
                                      (c.read_isr ? 8 : 0)),
            0,
            0};
}

bool SoftPic::restore(unsigned chip, std::span<const std::uint8_t> bytes) {
    Chip c;
    if (!bytes.empty()) {
        if (bytes.size() != kSaveSize || bytes[0] != 1 ||
            (bytes[6] != 0 && bytes[6] != 2 && bytes[6] != 3 && bytes[6] != 4) || bytes[7] > 15) {
            return false;
        }
        c.irr = bytes[1];
        c.isr = bytes[2];
        c.imr = bytes[3];
        c.level = bytes[4];
        c.base = static_cast<std::uint8_t>(bytes[5] & 0xf8);
        c.init_step = bytes[6];
        c.icw4 = (bytes[7] & 1) != 0;
        c.single = (bytes[7] & 2) != 0;
        c.auto_eoi = (bytes[7] & 4) != 0;
        c.read_isr = (bytes[7] & 8) != 0;
    }
    std::lock_guard lock(m_mutex);
    m_chip[chip & 1] = c;
    return true;
}

}  // namespace vireo::soft
