// React context carrying the app's LabSession (the worker connection) to the components that start
// sweeps or ask for neighbours. Must never create a session itself (App does, once).
import { createContext, useContext } from 'react';
import type { LabSession } from './session';

export const SessionContext = createContext<LabSession | null>(null);

export function useSession(): LabSession | null {
  return useContext(SessionContext);
}
