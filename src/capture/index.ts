// Packet capture for operators: NAT-T traffic into pcapng, and the esp_sa table that lets Wireshark decrypt it.

export { startCapture, type CaptureOptions, type CaptureStats, type CapturedPacketInfo, type NattCapture } from './capture';
export { PcapngWriter, LINKTYPE_RAW, LINKTYPE_ETHERNET, type InterfaceInfo, type InterfaceStatistics, type PacketDirection, type PcapngSink, type SectionInfo } from './pcapng';
export { captureFilter, matchesPorts, transportOf, type CapturePorts } from './filter';
export { espSaTable, writeEspSaFile, type EspSaTable } from './espsa';
