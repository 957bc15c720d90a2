import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
// Registers <connect-medicare-button> (this entry of the package has that side effect).
import 'connect-medicare/button';

import { App } from './App.jsx';
import './style.css';

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
