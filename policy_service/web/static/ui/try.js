// Choosing a fixture loads it straight away; without JavaScript the Load button does the same.
document.getElementById("fixture").addEventListener("change", (event) => event.target.form.submit());
