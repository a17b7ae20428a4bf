// The interactive parts of the page QAI's builtin model wrote. Each part starts only when its
// markup is on the page, so one script serves every page.
(function () {
  'use strict';

  function load(key, fallback) {
    try {
      var value = JSON.parse(window.localStorage.getItem(key));
      return value === null ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  function save(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      // Storage may be full or switched off: the page keeps working without it.
    }
  }

  // A to-do list: add, tick off and remove tasks; they survive a reload.
  function initTodo(root) {
    var key = 'qai.todo.' + (root.getAttribute('data-key') || 'list');
    var items = load(key, []);
    if (!Array.isArray(items)) items = [];
    var form = root.querySelector('form');
    var input = root.querySelector('input[name="todo"]');
    var list = root.querySelector('.todo-list');
    var left = root.querySelector('[data-todo-left]');

    function update() {
      save(key, items);
      render();
    }

    function render() {
      list.textContent = '';
      items.forEach(function (item, index) {
        var li = document.createElement('li');
        li.className = item.done ? 'todo-item done' : 'todo-item';
        var box = document.createElement('input');
        box.type = 'checkbox';
        box.checked = Boolean(item.done);
        box.setAttribute('aria-label', 'Done');
        box.addEventListener('change', function () {
          items[index].done = box.checked;
          update();
        });
        var text = document.createElement('span');
        text.textContent = String(item.text);
        var remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'todo-remove';
        remove.setAttribute('aria-label', 'Remove');
        remove.textContent = '\u00d7';
        remove.addEventListener('click', function () {
          items.splice(index, 1);
          update();
        });
        li.appendChild(box);
        li.appendChild(text);
        li.appendChild(remove);
        list.appendChild(li);
      });
      var open = items.filter(function (item) { return !item.done; }).length;
      left.textContent = open + (open === 1 ? ' item left' : ' items left');
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      items.push({ text: text, done: false });
      input.value = '';
      update();
    });
    render();
  }

  // A counter that remembers its value.
  function initCounter(root) {
    var key = 'qai.counter.' + (root.getAttribute('data-key') || 'count');
    var value = Number(load(key, 0)) || 0;
    var display = root.querySelector('[data-counter-value]');

    function render() {
      display.textContent = String(value);
    }

    root.addEventListener('click', function (event) {
      var button = event.target.closest('button[data-action]');
      if (!button) return;
      var action = button.getAttribute('data-action');
      if (action === 'increment') value += 1;
      else if (action === 'decrement') value -= 1;
      else if (action === 'reset') value = 0;
      save(key, value);
      render();
    });
    render();
  }

  // A four-function calculator, without eval.
  function initCalculator(root) {
    var display = root.querySelector('[data-calc-display]');
    var current = '0';
    var stored = null;
    var operator = null;
    var fresh = false;

    function compute(a, b, op) {
      if (op === '+') return a + b;
      if (op === '-') return a - b;
      if (op === '*') return a * b;
      if (op === '/') return b === 0 ? NaN : a / b;
      return b;
    }

    function format(n) {
      return isFinite(n) ? String(parseFloat(n.toPrecision(12))) : 'Error';
    }

    function press(key) {
      if (current === 'Error') {
        current = '0';
        stored = null;
        operator = null;
      }
      if (/^[0-9]$/.test(key)) {
        current = fresh || current === '0' ? key : current + key;
        fresh = false;
      } else if (key === '.') {
        if (fresh) {
          current = '0.';
          fresh = false;
        } else if (current.indexOf('.') < 0) {
          current += '.';
        }
      } else if (key === 'C') {
        current = '0';
        stored = null;
        operator = null;
        fresh = false;
      } else if (key === '=') {
        if (operator !== null) {
          current = format(compute(stored, parseFloat(current), operator));
          stored = null;
          operator = null;
          fresh = true;
        }
      } else {
        if (operator !== null && !fresh) current = format(compute(stored, parseFloat(current), operator));
        stored = parseFloat(current);
        operator = key;
        fresh = true;
      }
      display.textContent = current;
    }

    root.addEventListener('click', function (event) {
      var button = event.target.closest('button[data-key]');
      if (button) press(button.getAttribute('data-key'));
    });
    display.textContent = current;
  }

  // A contact form that thanks the visitor (there is no server behind this page).
  function initContact(form) {
    var status = form.querySelector('.form-status');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (!form.checkValidity()) {
        form.reportValidity();
        return;
      }
      var name = form.elements.namedItem('name').value.trim();
      status.textContent = 'Thanks' + (name ? ', ' + name : '') + '! We will be in touch soon.';
      form.reset();
    });
  }

  function start() {
    document.querySelectorAll('[data-widget="todo"]').forEach(initTodo);
    document.querySelectorAll('[data-widget="counter"]').forEach(initCounter);
    document.querySelectorAll('[data-widget="calculator"]').forEach(initCalculator);
    document.querySelectorAll('[data-widget="contact"]').forEach(initContact);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
