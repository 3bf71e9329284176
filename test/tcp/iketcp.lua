-- A test-side RFC 9329 stream dissector for tshark (Wireshark 4.0's "tcpencap" is Cisco's trailer format, not RFC 9329):
-- it splits the reassembled TCP stream at the "IKETCP" prefix (section 4) and the 16-bit Length fields (section 3), and
-- hands each IKE message (after the 4-octet non-ESP marker) to tshark's own ISAKMP dissector and each ESP packet to its
-- own ESP dissector, which decrypts with the esp_sa table. Written independently of src/tcp/framing.ts.
-- Load with: tshark -X lua_script:iketcp.lua -X lua_script1:<port>

local port = tonumber((...) or "4500")
local p = Proto("iketcp", "RFC 9329 IKE/ESP over TCP (natt test decoder)")
local f_prefix = ProtoField.string("iketcp.prefix", "Stream prefix")
local f_len = ProtoField.uint16("iketcp.length", "Length")
local f_kind = ProtoField.string("iketcp.kind", "Kind")
p.fields = { f_prefix, f_len, f_kind }

local isakmp = Dissector.get("isakmp")
local esp = Dissector.get("esp")
local tcp_seq = Field.new("tcp.seq")

-- Is `offset` in this tvb the first octet of the TCP stream (relative sequence number 1)?
local function at_stream_start(offset)
  local s = tcp_seq()
  return s ~= nil and (s.value + offset) == 1
end

local function pdu_len(tvb, pinfo, offset)
  if at_stream_start(offset) and tvb:len() - offset >= 6 and tvb(offset, 6):string() == "IKETCP" then
    return 6
  end
  return tvb(offset, 2):uint()
end

local function dissect_one(tvb, pinfo, tree)
  if tvb:len() == 6 and tvb(0, 6):string() == "IKETCP" and at_stream_start(0) then
    tree:add(p, tvb(0, 6)):add(f_prefix, tvb(0, 6))
    return 6
  end
  local len = tvb(0, 2):uint()
  local t = tree:add(p, tvb(0, len))
  t:add(f_len, tvb(0, 2))
  if len == 3 and tvb(2, 1):uint() == 0xff then
    t:add(f_kind, "keepalive")
  elseif len > 6 and tvb(2, 4):uint() == 0 then
    t:add(f_kind, "ike")
    pcall(function() isakmp:call(tvb(6, len - 6):tvb(), pinfo, tree) end)
  elseif len > 10 then
    t:add(f_kind, "esp")
    -- pcall: a decrypted inner packet that some dissector finds malformed must not stop the frames after it
    pcall(function() esp:call(tvb(2, len - 2):tvb(), pinfo, tree) end)
  else
    t:add(f_kind, "short")
  end
  pinfo.cols.protocol = "IKETCP"
  return len
end

function p.dissector(tvb, pinfo, tree)
  dissect_tcp_pdus(tvb, tree, 2, pdu_len, dissect_one, true)
end

DissectorTable.get("tcp.port"):add(port, p)
