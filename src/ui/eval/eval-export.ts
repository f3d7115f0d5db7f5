// Saving the evaluation panel's outputs: a chart <svg> as a standalone SVG or a 2× PNG, and text (CSV)
// as a file, through a temporary <a download>. Browser side effects at the UI's edge; it must never
// upload anything or read anything but the element and text it is given.

export function svgText(svg: SVGSVGElement): string {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  const w = svg.getAttribute('width') ?? String(svg.clientWidth);
  const h = svg.getAttribute('height') ?? String(svg.clientHeight);
  clone.setAttribute('width', w);
  clone.setAttribute('height', h);
  const bg = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
  bg.setAttribute('width', '100%');
  bg.setAttribute('height', '100%');
  bg.setAttribute('fill', '#ffffff');
  clone.insertBefore(bg, clone.firstChild);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(clone)}`;
}

export function saveBlob(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function saveText(name: string, text: string, type: string): void {
  saveBlob(name, new Blob([text], { type: `${type};charset=utf-8` }));
}

export function saveSvg(name: string, svg: SVGSVGElement): void {
  saveText(name, svgText(svg), 'image/svg+xml');
}

export async function savePng(name: string, svg: SVGSVGElement, scale = 2): Promise<void> {
  const w = Number(svg.getAttribute('width') ?? svg.clientWidth);
  const h = Number(svg.getAttribute('height') ?? svg.clientHeight);
  const url = URL.createObjectURL(new Blob([svgText(svg)], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise<void>((resolve, reject) => {
      img.onload = () => resolve();
      img.onerror = () => reject(new Error('the chart could not be drawn as an image'));
      img.src = url;
    });
    const canvas = document.createElement('canvas');
    canvas.width = Math.ceil(w * scale);
    canvas.height = Math.ceil(h * scale);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('no 2D canvas available');
    ctx.scale(scale, scale);
    ctx.drawImage(img, 0, 0, w, h);
    const blob = await new Promise<Blob>((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG encoding failed'))), 'image/png'),
    );
    saveBlob(name, blob);
  } finally {
    URL.revokeObjectURL(url);
  }
}
