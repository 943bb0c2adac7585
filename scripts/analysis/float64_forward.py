#!/usr/bin/env python3
"""Float64 forward pass of SmolLM2 on its dequantized weights, as an
independent yardstick for both Tessera and llama.cpp (docs/numerics.md).

  scripts/analysis/float64_forward.py CASE   (a prompt index of tests/golden/smollm2_logits.json)

Needs numpy, gguf, llama-cpp-python, and build/tests/engine/parity_dump.
"""
import json, os, subprocess, sys, tempfile
import numpy as np, gguf
from gguf import quants
r=gguf.GGUFReader('models/SmolLM2-135M-Instruct.Q4_1.gguf')
T={t.name:t for t in r.tensors}
def W(name):
    t=T[name]; a=quants.dequantize(t.data, t.tensor_type).astype(np.float64)
    return a.reshape([int(x) for x in reversed(t.shape)]) if a.ndim==1 and len(t.shape)>1 else a
g=json.load(open('tests/golden/smollm2_logits.json'))
idx=int(sys.argv[1]) if len(sys.argv)>1 else 0
toks=g['cases'][idx]['tokens']; n=len(toks)
d,H,KV,hd=576,9,3,64; eps=1e-5; base=100000.0
emb=W('token_embd.weight'); x=emb[toks]
def rms(x,w): return x/np.sqrt((x*x).mean(-1,keepdims=True)+eps)*w
pos=np.arange(n)
inv=base**(-np.arange(0,hd,2)/hd)
ang=pos[:,None]*inv[None,:]; c=np.cos(ang); s=np.sin(ang)
def rope(v):  # v [n, h, hd], adjacent pairs
    a=v[...,0::2]; b=v[...,1::2]
    out=np.empty_like(v); out[...,0::2]=a*c[:,None,:]-b*s[:,None,:]; out[...,1::2]=a*s[:,None,:]+b*c[:,None,:]; return out
for l in range(30):
    p=f'blk.{l}.'
    h=rms(x,W(p+'attn_norm.weight'))
    q=(h@W(p+'attn_q.weight').T).reshape(n,H,hd); k=(h@W(p+'attn_k.weight').T).reshape(n,KV,hd); v=(h@W(p+'attn_v.weight').T).reshape(n,KV,hd)
    q=rope(q); k=rope(k)
    out=np.zeros((n,H,hd))
    for hh in range(H):
        kk=k[:,hh//3]; vv=v[:,hh//3]
        sc=q[:,hh]@kk.T/np.sqrt(hd); sc=sc+np.triu(np.full((n,n),-np.inf),1)
        sc=np.exp(sc-sc.max(-1,keepdims=True)); sc/=sc.sum(-1,keepdims=True); out[:,hh]=sc@vv
    x=x+out.reshape(n,-1)@W(p+'attn_output.weight').T
    h=rms(x,W(p+'ffn_norm.weight'))
    gt=h@W(p+'ffn_gate.weight').T; up=h@W(p+'ffn_up.weight').T
    x=x+((gt/(1+np.exp(-gt)))*up)@W(p+'ffn_down.weight').T
logits=rms(x,W('output_norm.weight'))@emb.T
tmp=tempfile.mkdtemp()
subprocess.run(['build/tests/engine/parity_dump','models/SmolLM2-135M-Instruct.Q4_1.gguf','tests/golden/smollm2_logits.json',tmp,'0'],check=True)
ours=np.fromfile(tmp+f'/case{idx}.logits',dtype=np.float32).reshape(n,-1)
import llama_cpp
llm=llama_cpp.Llama(model_path='models/SmolLM2-135M-Instruct.Q4_1.gguf',n_ctx=512,n_batch=512,n_threads=2,logits_all=True,verbose=False,type_k=0,type_v=0,flash_attn=False)
llm.eval(toks); lc=np.array(llm.scores[:n])
for name,v in [('ours',ours),('llama.cpp',lc)]:
    dd=np.abs(v-logits); print(name,'vs f64: max',dd.max(),'mean',dd.mean(),'top1 agree',(v.argmax(-1)==logits.argmax(-1)).mean())
print('ours vs llama max',np.abs(ours-lc).max())
