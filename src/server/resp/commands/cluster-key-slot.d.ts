// Types for cluster-key-slot (the Redis Cluster hash slot: CRC16/XMODEM of the key or of its
// {hash tag}, mod 16384; maintained with ioredis), which ships none.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    function generateMulti(keys: readonly (string | Buffer)[]): number;
  }
  export default calculateSlot;
}
