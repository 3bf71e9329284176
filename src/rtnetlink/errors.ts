// RtnetlinkDecodeError: the one error the NETLINK_ROUTE decoder throws, naming the byte offset and the rule broken.

import { NattError, typeError } from '../errors';

/** A NETLINK_ROUTE buffer that breaks a framing or layout rule. `offset` is from the start of the decoded buffer. */
export class RtnetlinkDecodeError extends NattError {
  offset: number;
  rule: string;
  constructor(offset: number, rule: string) {
    if (typeof offset !== 'number') throw typeError('offset', 'a byte offset', offset);
    if (typeof rule !== 'string') throw typeError('rule', 'a string', rule);
    super('ERR_RTNETLINK_DECODE', `bad rtnetlink message at byte ${offset}: ${rule}`);
    this.offset = offset;
    this.rule = rule;
  }
}
