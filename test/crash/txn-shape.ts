// The data shape shared by the transaction crash test and its writer child.
export const ACCOUNTS = 10;
export const INITIAL = 1000;
/** TXN_KEYS: keys per transaction besides the two accounts: big enough to span many writes. */
export const TXN_KEYS = 200;

export const account = (i: number) => `acct:${i}`;
export const txnKey = (id: string, j: number) => `${id}/${String(j).padStart(3, '0')}`;
/** txnValue: 100 bytes, so a transaction is about 25 KiB on disk. */
export const txnValue = (id: string) => id.padEnd(100, '.');
