-- Wireshark dissector for the in-network aggregation protocol (version 1).
--
-- Install: copy to ~/.local/lib/wireshark/plugins/ (or pass
-- `-X lua_script:tools/wireshark/ina.lua` to tshark). Decodes UDP port 48864.
-- The layout is the table in packet-format's crate docs; a test in
-- tests/tests/dissector.rs checks this file against a capture of a real run.

local ina = Proto("ina", "In-Network Aggregation")

local msg_types = { [1] = "Contribution", [2] = "Result" }

local f = ina.fields
f.version    = ProtoField.uint8("ina.version", "Version", base.DEC)
f.msg_type   = ProtoField.uint8("ina.msg_type", "Message type", base.DEC, msg_types)
f.set        = ProtoField.uint8("ina.set", "Set", base.DEC)
f.flags      = ProtoField.uint8("ina.flags", "Flags", base.HEX)
f.flag_float = ProtoField.bool("ina.flags.float", "Float32 block fixed point", 8, nil, 0x01)
f.job_id     = ProtoField.uint16("ina.job_id", "Job id", base.DEC)
f.rank       = ProtoField.uint16("ina.rank", "Rank", base.DEC)
f.key        = ProtoField.uint32("ina.key", "Key", base.HEX)
f.seq        = ProtoField.uint32("ina.seq", "Sequence", base.DEC)
f.slot       = ProtoField.uint16("ina.slot", "Slot", base.DEC)
f.elem_count = ProtoField.uint16("ina.elem_count", "Element count", base.DEC)
f.exponent   = ProtoField.int16("ina.exponent", "Exponent", base.DEC)
f.reserved   = ProtoField.uint16("ina.reserved", "Reserved", base.HEX)
f.element    = ProtoField.int32("ina.element", "Element", base.DEC)

local HEADER_LEN = 24
local NO_EXPONENT = -32768

local ef_truncated = ProtoExpert.new("ina.truncated", "Payload shorter than element count",
    expert.group.MALFORMED, expert.severity.ERROR)
ina.experts = { ef_truncated }

function ina.dissector(buffer, pinfo, tree)
    if buffer:len() < HEADER_LEN then
        return 0
    end
    pinfo.cols.protocol = "INA"
    local subtree = tree:add(ina, buffer(0, math.min(buffer:len(), HEADER_LEN + 4 * buffer(18, 2):uint())))
    subtree:add(f.version, buffer(0, 1))
    local mt = buffer(1, 1):uint()
    subtree:add(f.msg_type, buffer(1, 1))
    subtree:add(f.set, buffer(2, 1))
    local flags = subtree:add(f.flags, buffer(3, 1))
    flags:add(f.flag_float, buffer(3, 1))
    subtree:add(f.job_id, buffer(4, 2))
    subtree:add(f.rank, buffer(6, 2))
    subtree:add(f.key, buffer(8, 4))
    subtree:add(f.seq, buffer(12, 4))
    subtree:add(f.slot, buffer(16, 2))
    local count = buffer(18, 2):uint()
    subtree:add(f.elem_count, buffer(18, 2))
    local exp_item = subtree:add(f.exponent, buffer(20, 2))
    if buffer(20, 2):int() == NO_EXPONENT then
        exp_item:append_text(" (none)")
    end
    subtree:add(f.reserved, buffer(22, 2))

    local available = math.floor((buffer:len() - HEADER_LEN) / 4)
    local shown = math.min(count, available)
    if count > available then
        subtree:add_proto_expert_info(ef_truncated)
    end
    if shown > 0 then
        local payload = subtree:add(buffer(HEADER_LEN, shown * 4), "Payload (" .. count .. " elements)")
        for i = 0, shown - 1 do
            payload:add(f.element, buffer(HEADER_LEN + 4 * i, 4))
        end
    end

    pinfo.cols.info = string.format("%s job=%d rank=%d slot=%d set=%d seq=%d n=%d",
        msg_types[mt] or ("type " .. mt), buffer(4, 2):uint(), buffer(6, 2):uint(),
        buffer(16, 2):uint(), buffer(2, 1):uint(), buffer(12, 4):uint(), count)
    return buffer:len()
end

DissectorTable.get("udp.port"):add(48864, ina)
