import json, subprocess, sys, time, urllib.request, os
ANVIL = "/work/main/.tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 18545
FORK = sys.argv[1]
OUT = sys.argv[3]
url = f"http://127.0.0.1:{PORT}"
p = subprocess.Popen([ANVIL, "--port", str(PORT), "--host", "127.0.0.1", "--hardfork", FORK, "--timestamp", "1700000000", "--no-mining", "--silent"])
def rpc(method, *params):
    req = urllib.request.Request(url, data=json.dumps({"jsonrpc":"2.0","id":1,"method":method,"params":list(params)}).encode(), headers={"Content-Type":"application/json"})
    r = json.loads(urllib.request.urlopen(req).read())
    if "error" in r: raise Exception(f"{method}: {r['error']}")
    return r["result"]
for _ in range(100):
    try: rpc("eth_chainId"); break
    except Exception: time.sleep(0.1)
try:
    accts = rpc("eth_accounts")
    a, b = accts[0], accts[1]
    T1 = "aa" * 32; T2 = "bb" * 32
    runtime = "36600060003733" + "7f" + T1 + "36" + "6000" + "a2" + "00"
    rl = len(runtime)//2
    ctor_head_len = 1+32+2+2+1 + 2+2+2+1 + 2+2+1
    ctor = "7f" + T2 + "6000" + "6000" + "a1" + "60%02x" % rl + "60%02x" % ctor_head_len + "6000" + "39" + "60%02x" % rl + "6000" + "f3"
    assert len(ctor)//2 == ctor_head_len, (len(ctor)//2, ctor_head_len)
    revert_rt = "60006000fd"
    rctor = "60%02x" % 5 + "60%02x" % 12 + "6000" + "39" + "60%02x" % 5 + "6000" + "f3"
    assert len(rctor)//2 == 12
    # block 1: deployments
    rpc("eth_sendTransaction", {"from": a, "data": "0x" + ctor + runtime, "gas": "0x100000"})
    rpc("eth_sendTransaction", {"from": b, "data": "0x" + rctor + revert_rt, "gas": "0x100000"})
    rpc("evm_mine")
    rs = rpc("eth_getBlockReceipts", "0x1")
    c1 = rs[0]["contractAddress"]; c2 = rs[1]["contractAddress"]
    # block 2: every kind of transaction
    legacy = FORK not in ("london", "shanghai", "cancun", "prague") 
    rpc("eth_sendTransaction", {"from": a, "to": b, "value": "0x1234", "gasPrice": "0x77359400", "gas": "0x5208"})
    rpc("eth_sendTransaction", {"from": a, "to": c1, "data": "0x0102030405", "gas": "0x20000", "gasPrice": "0x77359400", "accessList": [{"address": c1, "storageKeys": ["0x" + "00"*31 + "01"]}]})
    if not legacy:
        rpc("eth_sendTransaction", {"from": b, "to": c1, "data": "0x" + "ff"*70, "gas": "0x20000", "maxFeePerGas": "0xba43b7400", "maxPriorityFeePerGas": "0x3b9aca00"})
    rpc("eth_sendTransaction", {"from": accts[2], "to": c2, "data": "0x", "gas": "0x20000"})
    rpc("eth_sendTransaction", {"from": accts[3], "data": "0x" + ctor + runtime, "gas": "0x100000"})
    rpc("eth_sendTransaction", {"from": accts[3], "to": c1, "data": "0x", "gas": "0x20000"})
    rpc("evm_mine")
    os.makedirs(OUT, exist_ok=True)
    def save(name, v):
        with open(f"{OUT}/{name}", "w") as f: json.dump(v, f, indent=1)
    blk = rpc("eth_getBlockByNumber", "0x2", True)
    save("block.json", blk)
    save("block_hashes.json", rpc("eth_getBlockByNumber", "0x2", False))
    save("receipts.json", rpc("eth_getBlockReceipts", "0x2"))
    save("block1.json", rpc("eth_getBlockByNumber", "0x1", True))
    save("receipts1.json", rpc("eth_getBlockReceipts", "0x1"))
    tx1 = blk["transactions"][1]["hash"]
    save("tx.json", rpc("eth_getTransactionByHash", tx1))
    save("receipt.json", rpc("eth_getTransactionReceipt", tx1))
    params = [{"fromBlock": "0x1", "toBlock": "0x2", "address": c1, "topics": ["0x" + T1]}]
    save("logs_params.json", params)
    save("logs.json", rpc("eth_getLogs", params[0]))
finally:
    p.terminate(); p.wait()
