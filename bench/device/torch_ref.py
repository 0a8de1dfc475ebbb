# Device-only: PyTorch baseline on the same GPU: the same U-Net shapes (instance norm), Adam step.
import time, torch, torch.nn as nn, json
def block(cin, mid, cout):
    return nn.Sequential(nn.Conv3d(cin, mid, 3, padding=1), nn.InstanceNorm3d(mid, affine=True), nn.ReLU(inplace=True),
                         nn.Conv3d(mid, cout, 3, padding=1), nn.InstanceNorm3d(cout, affine=True), nn.ReLU(inplace=True))
class UNet(nn.Module):
    def __init__(s, base, depth, nout=3):
        super().__init__(); w=[base*2**(l+1) for l in range(depth)]; s.depth=depth
        s.enc=nn.ModuleList(); cin=1
        for l in range(depth): s.enc.append(block(cin, w[l]//2, w[l])); cin=w[l]
        s.up=nn.ModuleList(); s.dec=nn.ModuleList()
        for l in range(depth-2,-1,-1): s.up.append(nn.ConvTranspose3d(cin,cin,2,2)); s.dec.append(block(cin+w[l], w[l], w[l])); cin=w[l]
        s.head=nn.Conv3d(cin,nout,1); s.pool=nn.MaxPool3d(2)
    def forward(s,x):
        skips=[]
        for l,e in enumerate(s.enc):
            x=e(x)
            if l<s.depth-1: skips.append(x); x=s.pool(x)
        for u,d in zip(s.up,s.dec): x=d(torch.cat([u(x), skips.pop()],1))
        return s.head(x)
dev='cuda'
for label,side,b,base,depth,reps in [('tiny 32^3 c8 b1',32,1,4,2,20),('tiny 64^3 c16 b1',64,1,8,2,20),('reference UNet3D 96^3 b1',96,1,32,4,10),('reference UNet3D 96^3 b2',96,2,32,4,10)]:
    m=UNet(base,depth).to(dev); opt=torch.optim.Adam(m.parameters(),1e-4)
    x=torch.rand(b,1,side,side,side,device=dev); y=torch.randint(0,3,(b,side,side,side),device=dev)
    lossf=nn.CrossEntropyLoss()
    def step():
        opt.zero_grad(); l=lossf(m(x),y); l.backward(); opt.step()
    for _ in range(3): step()
    torch.cuda.synchronize(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); step(); torch.cuda.synchronize(); ts.append((time.perf_counter()-t)*1000)
    ts.sort(); print(json.dumps({'case':label,'torch_fp32_medianMs':round(ts[len(ts)//2],2),'params':sum(p.numel() for p in m.parameters())}))
