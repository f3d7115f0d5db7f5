# ---- target: nnsight (src/lab/export/python/target_nnsight.py) ------------------------------------------
# The same interventions written with nnsight's tracing API (written for nnsight >= 0.5), on this
# machine (transformers + peft under nnsight) or on NDIF with --remote (remote=True; the key from the
# NDIF_API_KEY environment variable, read by nnsight itself). K/V: the outputs of
# model.layers.N.self_attn.k_proj / v_proj at the patched positions; residual site l: the input of
# model.layers.l (site L: of model.norm); in model.generate the patch is written at step 0 only, the
# prefill (the paper's procedure). NDIF serves base models only, so a LoRA adapter goes along as
# interventions (y += dose*scaling*B(A x) on every targeted projection, every step). Greedy decoding is
# Hugging Face's argmax (the lab's, up to ties); sampling is Hugging Face's, not the lab's sampler.
# UNTESTED in the Piggyback Lab test suite (no nnsight there): py_compile only.
# It must never write the NDIF key anywhere (no CONFIG.set_default_api_key: that saves it to disk).

LORA_ORDER = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _intervene(root, n_layers, lora, scale, patch, capture, saved):
    """One forward pass's interventions in execution order (nnsight needs module accesses in that order):
    per layer the residual site, then each projection's LoRA branch, K/V patch or capture; then site L."""
    layers = root.model.layers
    for l in range(n_layers + 1):
        site = layers[l] if l < n_layers else root.model.norm
        if patch is not None and patch.component == "resid" and l in patch.sites:
            h = site.input.clone()
            h[:, patch.positions] = patch.values[l][patch.positions].to(h.device, h.dtype)
            site.input = h
        if capture is not None and capture[0] == "resid" and l in capture[1]:
            saved.append(site.input[0].detach().cpu())
        if l == n_layers:
            break
        for proj in LORA_ORDER:
            kv = proj in ("k_proj", "v_proj")
            patch_here = patch is not None and patch.component == "kv" and kv and l in patch.sites
            capture_here = capture is not None and capture[0] == "kv" and kv and l in capture[1]
            branch = lora.get((l, proj)) if lora else None
            if branch is None and not patch_here and not capture_here:
                continue
            mod = getattr(layers[l].self_attn if proj in LORA_ORDER[:4] else layers[l].mlp, proj)
            if branch is not None:
                a, b = branch
                x = mod.input
                mod.output = mod.output + (x @ a.to(x.device, x.dtype).T) @ b.to(x.device, x.dtype).T * scale
            if patch_here:
                out = mod.output.clone()
                key = proj[0]
                out[:, patch.positions] = patch.values[l][key][patch.positions].to(out.device, out.dtype)
                mod.output = out
            if capture_here:
                saved.append(mod.output[0].detach().cpu())


def _lora_tensors(source, args):
    """A PEFT adapter as {(layer, projection): (A, B)} and its scaling, for sending along to NDIF."""
    loc, rev = source_location(source, args)
    folder = loc
    if not os.path.isdir(folder):
        from huggingface_hub import snapshot_download
        folder = snapshot_download(loc, revision=rev)
    with open(os.path.join(folder, "adapter_config.json")) as f:
        cfg = json.load(f)
    r, alpha = cfg["r"], cfg.get("lora_alpha", 8)
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    from safetensors.torch import load_file
    out = {}
    for name, t in load_file(os.path.join(folder, "adapter_model.safetensors")).items():
        m = re.match(r"^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])(\.[^.]+)?\.weight$", name)
        if not m:
            raise Refusal(f"{name} is not a LoRA A/B weight of a projection")
        pair = out.setdefault((int(m.group(1)), m.group(3)), [None, None])
        pair[0 if m.group(4) == "A" else 1] = t
    return {k: tuple(v) for k, v in out.items()}, scaling


class NnsightBackend:
    def __init__(self, plan, args, text):
        try:
            import nnsight
            from nnsight import LanguageModel
        except ImportError:
            raise Refusal("--target nnsight needs nnsight (pip install nnsight), or export --target transformers")
        major, minor = (int(x) for x in re.findall(r"\d+", nnsight.__version__)[:2])
        if (major, minor) < (0, 5):
            raise Refusal(f"this script is written for nnsight >= 0.5; found {nnsight.__version__}")
        self.plan = plan
        self.remote = bool(args.remote)
        if self.remote and not os.environ.get("NDIF_API_KEY"):
            raise Refusal("--remote runs on NDIF: set the NDIF_API_KEY environment variable (https://login.ndif.us)")
        self.groups = {}
        for g in plan["weights"]:
            if self.remote:
                if g["source"]["kind"] != "hub":
                    raise Refusal(f"NDIF runs Hub models it hosts; {source_label(g['source'])} is not a Hub repo")
                lm = LanguageModel(g["source"]["repo"], revision=g["source"]["revision"])
                adapters = {ad["name"]: _lora_tensors(ad["source"], args) for ad in g["adapters"]}
                self.groups[g["key"]] = {"lm": lm, "root": lm, "loaded": None, "adapters": adapters}
            else:
                loaded = load_weights(g, args, None)
                lm = LanguageModel(loaded.module, tokenizer=text.tok)
                root = lm.base_model.model if hasattr(loaded.module, "get_base_model") else lm
                self.groups[g["key"]] = {"lm": lm, "root": root, "loaded": loaded, "adapters": {}}
        self.device = "NDIF" if self.remote else str(next(next(iter(self.groups.values()))["loaded"].module.parameters()).device)
        self.dtype = "checkpoint"
        self.label = f"nnsight {nnsight.__version__} {'on NDIF (remote)' if self.remote else 'on ' + self.device}"

    def _select(self, mid, dose):
        m = self.plan["models"][mid]
        g = self.groups[m["weights"]]
        lora, scale = {}, 0.0
        if g["loaded"] is not None:
            g["loaded"].select(m["adapter"], dose)
        elif m["adapter"] is not None and dose != 0:
            lora, scaling = g["adapters"][m["adapter"]]
            scale = scaling * float(dose)
        return g["lm"], g["root"], m["numLayers"], lora, scale

    def embedding(self, mid):
        m = self.plan["models"][mid]
        g = self.groups[m["weights"]]
        if g["loaded"] is None:
            raise Refusal("internal: no local embedding on NDIF")
        return decoder_parts(g["loaded"].module)[2].weight

    def neighbours(self, mid, token, n, allowed_below):
        if not self.remote:
            return nearest_neighbours(self.embedding(mid), token, n, allowed_below)
        lm, root, _, _, _ = self._select(mid, 0)
        rows = min(self.plan["models"][mid]["embeddingRows"], allowed_below)
        with lm.trace(torch.tensor([[token]]), remote=True):
            e = root.model.embed_tokens.weight
            scores = e[:rows].float() @ e[token].float()
            scores[token] = float("-inf")
            top = scores.topk(min(rows - 1, n + 16))
            ids = top.indices.detach().cpu().save()
            vecs = e[top.indices].detach().cpu().save()
            q = e[token].detach().cpu().save()
        # NOTE: the server ranks in fp32; the exact fp64 order (ties to the lower id) is decided here.
        exact = (vecs.to(torch.float64) @ q.to(torch.float64)).tolist()
        order = sorted(zip(exact, ids.tolist()), key=lambda x: (-x[0], x[1]))
        return [i for _, i in order[:n]]

    def capture(self, mid, dose, ids, component, sites):
        lm, root, L, lora, scale = self._select(mid, dose)
        with lm.trace(torch.tensor([ids]), remote=self.remote):
            saved = list().save()
            _intervene(root, L, lora, scale, None, (component, sorted(sites)), saved)
        out, it = {}, iter(saved)
        for s in sorted(sites):
            out[s] = {"k": next(it), "v": next(it)} if component == "kv" else next(it)
        return out

    def first_logits(self, mid, dose, ids, patch):
        lm, root, L, lora, scale = self._select(mid, dose)
        with lm.trace(torch.tensor([ids]), remote=self.remote):
            _intervene(root, L, lora, scale, patch, None, None)
            logits = root.lm_head.output[0, -1].detach().cpu().save()
        return logits.float()

    def all_logits(self, mid, dose, ids, patch):
        lm, root, L, lora, scale = self._select(mid, dose)
        with lm.trace(torch.tensor([ids]), remote=self.remote):
            _intervene(root, L, lora, scale, patch, None, None)
            logits = root.lm_head.output[0].detach().cpu().save()
        return logits.float()

    def generate(self, mid, dose, ids, patch, gen, text):
        from transformers import GenerationConfig
        lm, root, L, lora, scale = self._select(mid, dose)
        stops = list(gen["stopIds"])
        sampled = bool(gen.get("temperature"))
        cfg = {"max_new_tokens": gen["maxNewTokens"], "do_sample": sampled, "eos_token_id": stops or None,
               "pad_token_id": stops[0] if stops else 0}
        if sampled:
            cfg.update({"temperature": gen["temperature"], "top_k": gen.get("topK") or 0, "top_p": gen.get("topP") or 1.0})
            torch.manual_seed(gen["seed"])
        x = torch.tensor([ids])
        if not lora:
            with lm.generate(x, generation_config=GenerationConfig(**cfg), remote=self.remote) as tracer:
                _intervene(root, L, None, 0.0, patch, None, None)  # step 0: the prefill
                first = root.lm_head.output[0, -1].detach().cpu().save()
                result = tracer.result.detach().cpu().save()
        else:
            with lm.generate(generation_config=GenerationConfig(**cfg), remote=self.remote) as tracer:
                with tracer.invoke(x):
                    firsts = list().save()
                    for step in tracer.all():
                        _intervene(root, L, lora, scale, patch if step == 0 else None, None, None)
                        if step == 0:
                            firsts.append(root.lm_head.output[0, -1].detach().cpu())
                with tracer.invoke():
                    result = tracer.result.detach().cpu().save()
            first = firsts[0]
        tokens = []
        for tok in result[0, len(ids):].tolist():
            if tok in stops or len(tokens) >= gen["maxNewTokens"]:
                break
            tokens.append(tok)
            if gen.get("stop") and any(text.decode(tokens).endswith(s) for s in gen["stop"]):
                break
        return tokens, first.float()


def make_backend(plan, args):
    if args.backend != "transformers":
        raise Refusal("--target nnsight runs on transformers models (locally) or NDIF (--remote)")
    import nnsight  # noqa: F401 (first, so a missing nnsight is what the message names)
    tm = plan["models"][plan["tokenizerModel"]]
    src = next(g["source"] for g in plan["weights"] if g["key"] == tm["weights"])
    text = HFText(*source_location(src, args))
    return NnsightBackend(plan, args, text), text
