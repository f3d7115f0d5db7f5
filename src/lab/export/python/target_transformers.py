# ---- target: transformers (src/lab/export/python/target_transformers.py) --------------------------------
# The interventions as plain PyTorch hooks on Hugging Face module names, so they run the same on
# transformers + peft (local GPU or CPU; device_map="auto" spreads a model over several GPUs) and on
# the local backend. K/V: forward hooks on model.layers.N.self_attn.k_proj / v_proj replace their
# outputs (after any LoRA branch, before Qwen3's k_norm and RoPE) at the patched positions; residual
# site l: a forward pre-hook replaces the stream entering model.layers.l (site L: entering model.norm).
# Patches are on during the prefill only; decoding then runs unpatched from the cache, whose prefix
# entries are the patched ones (the paper's procedure). It must never leave a hook registered after
# the call it was made for.


def _pre_hook(module, fn):
    """Registers fn(hidden) -> replacement or None on the first argument (or `hidden_states=`) of module."""
    def with_kwargs(mod, args, kwargs):
        if args:
            new = fn(args[0])
            return None if new is None else ((new,) + tuple(args[1:]), kwargs)
        new = fn(kwargs["hidden_states"])
        if new is None:
            return None
        kwargs = dict(kwargs)
        kwargs["hidden_states"] = new
        return args, kwargs

    def positional(mod, args):
        new = fn(args[0])
        return None if new is None else (new,) + tuple(args[1:])

    try:
        return module.register_forward_pre_hook(with_kwargs, with_kwargs=True)
    except TypeError:  # torch < 2.0: no kwargs in pre-hooks (transformers passes hidden_states first)
        return module.register_forward_pre_hook(positional)


class Hooks:
    """For one forward call: capture the component at sites, and/or write a Patch's values at its positions."""

    def __init__(self, module, patch=None, capture=None):
        self.module = module
        self.patch = patch
        self.capture = capture  # (component, sites, out dict) or None
        self.handles = []

    def _replace(self, site, key):
        p = self.patch
        index = torch.tensor(p.positions, dtype=torch.long)

        def fn(x):
            out = x.clone()
            value = p.values[site][key] if isinstance(p.values[site], dict) else p.values[site]
            out[:, index.to(x.device)] = value[index].to(x.device, x.dtype)
            return out
        return fn

    def _record(self, out, site, key=None):
        def fn(x):
            v = x[0].detach().clone()
            if key is None:
                out[site] = v
            else:
                out.setdefault(site, {})[key] = v
            return None
        return fn

    def __enter__(self):
        layers, norm, _ = decoder_parts(self.module)

        def site_module(l):
            return layers[l] if l < len(layers) else norm

        if self.capture:
            component, sites, out = self.capture
            for l in sites:
                if component == "resid":
                    self.handles.append(_pre_hook(site_module(l), self._record(out, l)))
                else:
                    for key in ("k", "v"):
                        proj = getattr(layers[l].self_attn, f"{key}_proj")
                        rec = self._record(out, l, key)
                        self.handles.append(proj.register_forward_hook(lambda m, i, o, rec=rec: rec(o)))
        if self.patch:
            p = self.patch
            for l in p.sites:
                if p.component == "resid":
                    self.handles.append(_pre_hook(site_module(l), self._replace(l, None)))
                else:
                    for key in ("k", "v"):
                        proj = getattr(layers[l].self_attn, f"{key}_proj")
                        rep = self._replace(l, key)
                        self.handles.append(proj.register_forward_hook(lambda m, i, o, rep=rep: rep(o)))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles = []
        return False


class HookBackend:
    def __init__(self, plan, args):
        self.plan = plan
        local = import_local_module(args.local_module) if args.backend == "local" else None
        self.groups = {g["key"]: load_weights(g, args, local) for g in plan["weights"]}
        some = next(iter(self.groups.values())).module
        p = next(some.parameters())
        self.device = str(p.device) if not hasattr(some, "hf_device_map") else "device_map=auto"
        self.dtype = str(p.dtype).replace("torch.", "")
        if args.backend == "local":
            self.label = f"local PyTorch {torch.__version__} on {self.device} ({self.dtype})"
        else:
            import transformers
            self.label = f"transformers {transformers.__version__} on {self.device} ({self.dtype})"

    def _module(self, mid, dose):
        m = self.plan["models"][mid]
        g = self.groups[m["weights"]]
        g.select(m["adapter"], dose)
        return g.module

    def _forward(self, module, ids, patch=None, capture=None, past=None, use_cache=False):
        x = torch.tensor([ids], dtype=torch.long, device=first_device(module))
        with torch.no_grad(), Hooks(module, patch, capture):
            if past is None:
                return module(input_ids=x, use_cache=use_cache)
            return module(input_ids=x, past_key_values=past, use_cache=True)

    def embedding(self, mid):
        return decoder_parts(self._module(mid, self.plan["models"][mid]["dose"]))[2].weight

    def capture(self, mid, dose, ids, component, sites):
        out = {}
        self._forward(self._module(mid, dose), ids, capture=(component, sites, out))
        return out

    def first_logits(self, mid, dose, ids, patch):
        return self._forward(self._module(mid, dose), ids, patch).logits[0, -1].float().cpu()

    def all_logits(self, mid, dose, ids, patch):
        return self._forward(self._module(mid, dose), ids, patch).logits[0].float().cpu()

    def generate(self, mid, dose, ids, patch, gen, text):
        module = self._module(mid, dose)
        out = self._forward(module, ids, patch, use_cache=True)  # the prefill: the only patched call
        first = out.logits[0, -1].float().cpu()
        logits, past = first, out.past_key_values
        rng = LabRng(gen["seed"])
        stops = set(gen["stopIds"])
        strings = gen.get("stop") or []
        tokens = []
        while True:
            tok = sample_token(logits, gen, rng)
            if tok in stops:
                break
            tokens.append(tok)
            if len(tokens) >= gen["maxNewTokens"]:
                break
            if strings and any(text.decode(tokens).endswith(s) for s in strings):
                break
            out = self._forward(module, [tok], past=past)
            logits, past = out.logits[0, -1].float().cpu(), out.past_key_values
        return tokens, first


def make_backend(plan, args):
    backend = HookBackend(plan, args)
    tm = plan["models"][plan["tokenizerModel"]]
    src = next(g["source"] for g in plan["weights"] if g["key"] == tm["weights"])
    loc, rev = source_location(src, args)
    if args.backend == "local":
        text = LocalText(backend.groups[tm["weights"]]._local, local_path(loc, rev))
    else:
        text = HFText(loc, rev)
    return backend, text
