"""Feature-level CutMix (or MixUp) inside a small ResNet, trained on the CPU on synthetic data.

    python examples/train_feature_mix.py                  # CutMix after the first stage
    python examples/train_feature_mix.py --mode mixup
    python examples/train_feature_mix.py --sites 3        # one of three stages mixes each step
    python examples/train_feature_mix.py --brief          # a progress bar, then the result only

The images are generated here, so the run needs no download and is reproducible from --seed:
each of the 10 classes is a colour (one of 5) times a stripe orientation (one of 2), drawn with a
random phase, stripe width, colour jitter and noise, so that neither cue alone separates them.
"""
import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F

import cutmix_ext

NUM_CLASSES = 10
SIZE = 32
COLOURS = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0], [1.0, 1.0, 0.2],
                        [0.2, 1.0, 1.0]])


def make_batch(n, generator):
    """n images (n, 3, SIZE, SIZE) and their labels, from `generator` only."""
    labels = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    colour = COLOURS[labels % 5] + 0.15 * torch.randn(n, 3, generator=generator)
    # Class 0-4: horizontal stripes, 5-9: vertical ones; the period and phase vary per image so
    # that the network has to detect an orientation rather than memorise a template.
    period = 4.0 + 4.0 * torch.rand(n, generator=generator)
    phase = 2 * math.pi * torch.rand(n, generator=generator)
    coords = torch.arange(SIZE, dtype=torch.float32)
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    along = torch.where((labels >= 5).view(n, 1, 1), xs, ys)
    stripes = torch.sin(2 * math.pi * along / period.view(n, 1, 1) + phase.view(n, 1, 1))
    images = colour.view(n, 3, 1, 1) * (0.5 + 0.5 * stripes).unsqueeze(1)
    images = images + 0.3 * torch.randn(n, 3, SIZE, SIZE, generator=generator)
    return images, labels


class BasicBlock(torch.nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.shortcut = torch.nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(torch.nn.Module):
    """Stem, three stages of basic blocks at 16x16, 8x8 and 4x4, global pool, linear head.
    sites=1 mixes after stage 1 only; sites=2 or 3 adds the outputs of stages 2 and 3 as
    candidates, one of which mixes each step (Manifold-style)."""

    def __init__(self, mode="cutmix", sites=1, width=16):
        super().__init__()
        if not 1 <= sites <= 3:
            raise ValueError(f"sites: expected 1, 2 or 3, got {sites}")
        # A strided stem keeps the first stage at 16x16: most of the CPU time is spent there.
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, width, 3, 2, 1, bias=False),
                                        torch.nn.BatchNorm2d(width), torch.nn.ReLU())
        self.stage1 = BasicBlock(width, width, 1)
        self.stage2 = BasicBlock(width, 2 * width, 2)
        self.stage3 = BasicBlock(2 * width, 4 * width, 2)
        self.head = torch.nn.Linear(4 * width, NUM_CLASSES)
        self.sites = sites
        self.mix = cutmix_ext.nn.FeatureMix(mode, alpha=1.0, sites=sites)

    def forward(self, x):
        x = self.mix(self.stage1(self.stem(x)))
        x = self.stage2(x)
        if self.sites >= 2:
            x = self.mix(x, site=1)
        x = self.stage3(x)
        if self.sites >= 3:
            x = self.mix(x, site=2)
        return self.head(x.mean((2, 3)))


def soft_cross_entropy(logits, targets):
    return -(targets * F.log_softmax(logits, 1)).sum(1).mean()


def evaluate(model, images, labels, batch=250):
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
                      for i in range(0, len(labels), batch))
    model.train()
    return correct / len(labels)


class Bar:
    """A plain-text progress bar on stderr: redrawn in place on a terminal, a line every quarter
    in a log."""

    def __init__(self, total, what):
        self.total, self.what, self.tty = total, what, sys.stderr.isatty()
        self.start = time.monotonic()

    def __call__(self, done):
        if self.tty or done * 4 // self.total > (done - 1) * 4 // self.total:
            bar = "#" * (30 * done // self.total)
            line = f"[{bar:<30}] {done}/{self.total} {time.monotonic() - self.start:4.0f} s  {self.what}"
            end = "\n" if not self.tty or done == self.total else ""
            sys.stderr.write(("\r" if self.tty else "") + line + end)
            sys.stderr.flush()


def train(steps=300, batch=64, seed=0, mode="cutmix", log_every=50, sites=1, held_out=1000,
          on_step=None):
    """Trains from scratch, calling on_step(steps done) after each step; returns a dict with the
    per-step `losses`, `grads_finite` (every gradient of every step finite), held-out `accuracy`
    in eval() mode, the `model` and `seconds` spent training."""
    torch.manual_seed(seed)  # initialisation and FeatureMix's draws
    data = torch.Generator().manual_seed(seed)
    test_images, test_labels = make_batch(held_out, torch.Generator().manual_seed(seed + 10_000))
    model = ResNet(mode, sites)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4,
                          nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps,
                                                pct_start=0.2)
    losses, grads_finite = [], True
    start = time.perf_counter()
    for step in range(steps):
        images, labels = make_batch(batch, data)
        logits = model(images)
        loss = soft_cross_entropy(logits, model.mix.targets(labels, NUM_CLASSES))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads_finite &= all(bool(p.grad.isfinite().all()) for p in model.parameters()
                            if p.grad is not None)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(step + 1)
        if log_every and (step == 0 or (step + 1) % log_every == 0 or step + 1 == steps):
            window = losses[-min(log_every, step + 1):]
            print(f"step {step + 1:4d}  loss {sum(window) / len(window):.3f}"
                  f"{'' if step == 0 else f'  (mean of the last {len(window)})'}")
    seconds = time.perf_counter() - start
    return {"losses": losses, "grads_finite": grads_finite, "model": model, "seconds": seconds,
            "accuracy": evaluate(model, test_images, test_labels)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=["cutmix", "mixup"], default="cutmix")
    parser.add_argument("--sites", type=int, choices=[1, 2, 3], default=1,
                        help="candidate layers (after stages 1..sites); one mixes each step")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--brief", action="store_true",
                        help="a progress bar on stderr instead of the loss, then the result in one line")
    args = parser.parse_args()
    where = "after stage 1" if args.sites == 1 else f"at one of stages 1-{args.sites}"
    what = f"feature-level {args.mode} {where}: {args.steps} steps of {args.batch}"
    if args.brief:
        result = train(args.steps, args.batch, args.seed, args.mode, 0, args.sites,
                       on_step=Bar(args.steps, "training steps"))
    else:
        print(f"{what} on the CPU ({torch.get_num_threads()} threads), seed {args.seed}")
        result = train(args.steps, args.batch, args.seed, args.mode, args.log_every, args.sites)
        print(f"trained in {result['seconds']:.1f} s; gradients finite: {result['grads_finite']}")
    if not result["grads_finite"]:
        sys.exit(f"training ({what}): FAILED: a gradient was not finite")
    print(f"training ({what}): held-out accuracy {result['accuracy']:.1%} (eval mode, unmixed), "
          f"{result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
