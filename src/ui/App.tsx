// The lab's root component: header (title, backend badge), notices, the Teach bar, and the panels —
// models, patch, share on the side; prompt, conditions and plots in the main column. It opens a share
// link from the URL fragment (or shows why it cannot, over the default demo) and starts the session.
// Must never run a model on this thread; everything model-related goes through the worker client.
import { useEffect, useState } from 'react';
import { BackendBadge } from './components/BackendBadge';
import { ConditionsGrid } from './components/ConditionsGrid';
import { ImportedResults } from './components/ImportedResults';
import { ModelsPanel } from './components/ModelsPanel';
import { Notices } from './components/Notices';
import { PatchControls } from './components/PatchControls';
import { PlotsPanel } from './components/PlotsPanel';
import { EvalPanel } from './eval/EvalPanel';
import { PromptPanel } from './components/PromptPanel';
import { SharePanel } from './components/SharePanel';
import { TeachPanel } from './components/TeachPanel';
import { specFromHash } from './link-boot';
import { LabSession } from './session';
import { SessionContext } from './session-context';
import { labStore, useLab } from './store';

/** Installs the spec a link carries, or posts why it cannot be opened. */
function openHash(hash: string): void {
  const boot = specFromHash(hash);
  const s = labStore.getState();
  if (boot.kind === 'spec') s.setSpec(boot.spec, 'link');
  else if (boot.kind === 'error') s.notify('error', boot.message, boot.details);
}

export function App() {
  const [session] = useState(() => new LabSession(labStore));
  const name = useLab((s) => s.spec.name);
  const spec = useLab((s) => s.spec);
  const origin = useLab((s) => s.origin);

  useEffect(() => {
    openHash(window.location.hash);
    session.start();
    const onHash = () => openHash(window.location.hash);
    window.addEventListener('hashchange', onHash);
    return () => {
      window.removeEventListener('hashchange', onHash);
      session.dispose();
    };
  }, [session]);

  return (
    <SessionContext.Provider value={session}>
      <div className="app">
        <a className="skip" href="#main">
          Skip to the lab
        </a>
        <header className="app-header">
          <h1>Piggyback Lab</h1>
          <p className="tagline">
            Does the chat-template prefix carry a finetune&apos;s misbehaviour? Perturb it, patch it, see.
          </p>
          <BackendBadge />
        </header>
        <Notices />
        <TeachPanel />
        <p className="experiment-name small muted" data-testid="experiment-name">
          {name}
          {origin === 'link' && ' · opened from a link'}
          {origin === 'file' && ' · loaded from a file'}
        </p>
        <main id="main" className="lab-grid">
          <div className="main-col">
            <PromptPanel />
            <ConditionsGrid />
            <ImportedResults />
            <PlotsPanel />
            <EvalPanel spec={spec} client={() => session.engineQueue} />
          </div>
          <aside className="side-col" aria-label="models, patch and sharing">
            <ModelsPanel />
            <PatchControls />
            <SharePanel />
          </aside>
        </main>
      </div>
    </SessionContext.Provider>
  );
}
